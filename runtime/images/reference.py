"""Image references, parsed the way Docker parses them.

    [registry[:port]/][namespace/…]name[:tag][@sha256:<64 hex>]

``parse("busybox")`` is ``docker.io/library/busybox:latest``; ``Reference``
holds the normalized parts and renders them two ways:

- ``canonical()``  every part spelled out: ``docker.io/library/busybox:latest``
- ``familiar()``   what ``docker images`` shows: ``busybox:latest``

The grammar, the defaults and the error cases follow Docker's own parser
(``github.com/distribution/reference``: ``regexp.go``, ``normalize.go``):

- the first component is a registry only if it has a ``.`` or a ``:`` or is
  ``localhost`` (or has an uppercase letter, which a path component may not);
  ``a.b/c`` names registry ``a.b``, ``a/b`` names ``docker.io/a/b``;
- ``docker.io`` (and its old name ``index.docker.io``) gets ``library/`` in
  front of a one-component path, no other registry does;
- a repository path is lowercase; a tag is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``;
- no tag and no digest means ``:latest``; a digest alone pins the image and
  leaves the tag empty; with both, the digest decides what is pulled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidArgument

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
OFFICIAL_NAMESPACE = "library"
# docker.io is the name users see; the registry API of Docker Hub answers at
# registry-1.docker.io (``DefaultV2Registry`` in Docker's registry package).
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_LEGACY_DEFAULT_REGISTRY = "index.docker.io"
# distribution/reference: NameTotalLengthMax.
MAX_NAME_LENGTH = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Reference:
    """A normalized image reference.

    ``registry`` is the name users see (``docker.io``, ``localhost:5000``);
    ``api_host`` is where its HTTP API answers.  ``tag`` is ``None`` only
    when a digest pins the image.
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def familiar_name(self) -> str:
        """The repository as users write it: ``busybox``, ``me/app``, ``localhost:5000/x``."""
        if self.registry != DEFAULT_REGISTRY:
            return f"{self.registry}/{self.repository}"
        prefix = OFFICIAL_NAMESPACE + "/"
        if self.repository.startswith(prefix) and "/" not in self.repository[len(prefix) :]:
            return self.repository[len(prefix) :]
        return self.repository

    @property
    def target(self) -> str:
        """What the registry's manifest endpoint is asked for: the digest, else the tag."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None  # parse() gives every reference a tag or a digest
        return self.tag

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    def canonical(self) -> str:
        return f"{self.registry}/{self.repository}{self._suffix()}"

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.familiar()


def parse(text: str, *, field: str = "image") -> Reference:
    """Parse and normalize ``text``; ``InvalidArgument`` on ``field`` says what is wrong."""

    def invalid(why: str) -> InvalidArgument:
        return InvalidArgument(field, f"invalid reference {text!r}: {why}")

    if not text:
        raise invalid("it is empty")
    if _HEX64.fullmatch(text):
        # normalize.go: a bare 64-hex string is an image id, never a name.
        raise invalid("a 64-character hexadecimal string is an image id, not a name")

    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise invalid(f"digest {digest!r} is not sha256: and 64 lowercase hex digits")

    # A tag is what follows the last ':' when no '/' follows it (a ':' before
    # a '/' is a registry's port, as in localhost:5000/x).
    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise invalid(
                f"tag {tag!r} must be letters, digits, '_', '.' or '-' (at most 128), "
                "not starting with '.' or '-'"
            )

    if not rest:
        raise invalid("the repository name is missing")
    if len(rest) > MAX_NAME_LENGTH:
        raise invalid(f"the name is longer than {MAX_NAME_LENGTH} characters")

    registry, path = _split_registry(rest)
    if not _DOMAIN.fullmatch(registry):
        raise invalid(f"{registry!r} is not a valid registry host[:port]")
    if path.lower() != path:
        raise invalid(f"repository name {path!r} must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise invalid(
                f"path component {component!r} must be lowercase letters and digits, "
                "separated by '.', '_', '__' or dashes"
            )
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)


def _split_registry(name: str) -> tuple[str, str]:
    """normalize.go's ``splitDockerDomain``: is the first component a registry?"""
    first, slash, remainder = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        return DEFAULT_REGISTRY, name
    if first == _LEGACY_DEFAULT_REGISTRY:
        first = DEFAULT_REGISTRY
    return first, remainder
