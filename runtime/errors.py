"""The runtime's exceptions; ``app/errors.py`` alone maps them to HTTP.

RuntimeFailure                 the base of every error the runtime raises
├── NotFound                   no container (or image, …) matches a reference
├── Conflict                   the request clashes with current state
│   ├── NameInUse              the name belongs to another container
│   ├── AmbiguousReference     an id prefix matches several containers
│   └── InvalidState           e.g. kill of a container that is not running
│       └── NotModified        already in the state asked for (start of a running container)
├── InvalidArgument            a value the HTTP schema could not catch (names the field)
├── LimitReached               e.g. as many containers run as the service allows
├── InvalidArchive             an image archive that is not a tar, or is hostile (says why)
├── TooLarge                   an image archive over the service's size cap
├── Forbidden                  never allowed, e.g. deleting a built-in image
├── Unavailable                the launcher cannot be reached, or the records are locked
│   └── DigestMismatch         a registry served content that does not match its digest
└── StorageFull                the state dir's filesystem is full (ENOSPC, SQLITE_FULL)
"""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Base class; ``str(err)`` is a sentence for the user."""


class NotFound(RuntimeFailure):
    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"no such {kind}: {ref}")
        self.kind = kind
        self.ref = ref


class Conflict(RuntimeFailure):
    pass


class NameInUse(Conflict):
    def __init__(self, name: str, kind: str = "container") -> None:
        super().__init__(f"the name {name!r} is already in use by another {kind}")
        self.name = name


class AmbiguousReference(Conflict):
    def __init__(self, ref: str, count: int) -> None:
        super().__init__(f"{ref!r} matches {count} containers; give more of the id")
        self.ref = ref


class InvalidState(Conflict):
    pass


class NotModified(InvalidState):
    """The operation asks for the state the target is already in: the native
    API answers it as any ``InvalidState`` (409), Docker's as 304."""


class InvalidArgument(RuntimeFailure):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LimitReached(RuntimeFailure):
    """A configured limit is reached; ``retry_after`` seconds is a hint."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RuntimeFailure):
    pass


class RegistryUnavailable(Unavailable):
    """A registry does not answer, or answers with an error of its own
    (502 Bad Gateway: the service is a gateway to it)."""


class RegistryTimeout(RegistryUnavailable):
    """A registry did not answer in time (504 Gateway Timeout)."""


class DigestMismatch(Unavailable):
    """Content fetched from a registry is not what its descriptor names.

    An ``Unavailable`` (503) rather than a client error: the request was
    fine, the registry (or something between it and us) served bad bytes.
    """


class StorageFull(RuntimeFailure):
    def __init__(self, where: str, detail: str = "no space left on device") -> None:
        super().__init__(
            f"the state dir is full ({where}: {detail}); free some space or remove "
            "old containers (DELETE /containers/{ref})"
        )
        self.where = where


class InvalidArchive(RuntimeFailure):
    """The archive is not a tar (or tar.gz), or a member would escape the image."""


class TooLarge(RuntimeFailure):
    pass


class Forbidden(RuntimeFailure):
    pass
