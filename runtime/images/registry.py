"""A client of the OCI distribution protocol (the Docker Registry HTTP API v2).

RegistryClient          one httpx client, a token cache; ``resolve`` and ``blob``
├── resolve(ref)        manifest (an index picks ``linux/<host arch>``), config → ResolvedImage
└── blob(ref, desc)     a context manager streaming one blob's bytes (for BlobStore.fetch)
Credentials             username + password, passed per call; the password is never
                        printed (``repr=False``), logged, or put in an error
Challenge               a parsed ``WWW-Authenticate`` header (``parse_challenge``)

Endpoints (distribution-spec, spec.md "Pull"):
``GET /v2/<name>/manifests/<tag or digest>`` with an ``Accept`` of the four
manifest types, ``GET /v2/<name>/blobs/<digest>`` (registries often answer
with a redirect to storage; httpx drops ``Authorization`` on a redirect to
another origin, so a token never leaks there).

Auth (distribution's docs/spec/auth/token.md): a request answered ``401`` with
``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` is retried once with a
token from ``realm?service=…&scope=repository:<name>:pull`` (fetched with
basic credentials when the call has some, anonymously otherwise); a ``Basic``
challenge is retried with the credentials.  Credentials go only to the
registry they were given for and to its token realm over HTTPS (or loopback),
never to a mirror.

Transport: loopback registries (``localhost``, ``127.0.0.0/8``, ``::1``) and
those in ``insecure_registries`` are spoken to over plain HTTP, every other
one over HTTPS.  ``mirrors`` (URLs) are tried, in order, before Docker Hub
for ``docker.io`` references, and Docker Hub after them, as dockerd's
``registry-mirrors`` do.

Errors: ``NotFound`` (unknown repository, tag or digest; the message names
the reference), ``Forbidden`` (credentials refused, or needed),
``Unavailable`` (no answer, 5xx), ``InvalidArgument`` (an unsupported
media type), ``TooLarge`` (a manifest over 4 MiB, a layer over the cap),
``DigestMismatch`` (content that is not what its digest says).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import httpx

from runtime.errors import (
    DigestMismatch,
    Forbidden,
    InvalidArgument,
    NotFound,
    RegistryTimeout,
    RegistryUnavailable,
    TooLarge,
    Unavailable,
)
from runtime.images import oci
from runtime.images.reference import DEFAULT_REGISTRY, Reference

log = logging.getLogger("mydocker.images")

# containerd and the distribution project bound a manifest at 4 MiB.
MAX_MANIFEST_BYTES = 4 << 20
DEFAULT_MAX_LAYER_BYTES = 8 << 30


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "bearer" or "basic"
    params: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        return dict(self.params).get(key)


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge | None:
    """RFC 7235's challenge: ``Bearer realm="…",service="…"``; None if unparsable."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = []
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.append((match.group(1).lower(), value))
        pos = match.end()
    return Challenge(scheme.lower(), tuple(params))


def is_loopback(host: str) -> bool:
    name = host
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ResolvedImage:
    """A manifest and its config, both verified against their digests."""

    reference: Reference
    digest: str  # the image manifest's (the platform's one, under an index)
    manifest: oci.Manifest
    manifest_bytes: bytes = field(repr=False)
    config: oci.ImageConfig
    config_bytes: bytes = field(repr=False)
    index_digest: str | None = None  # the index's, when the reference named one
    source: str = ""  # the base URL that answered (a mirror or the registry)


class RegistryClient:
    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        mirrors: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES,
        platform: oci.Platform | None = None,
    ) -> None:
        self.insecure_registries = frozenset(insecure_registries)
        self.mirrors = tuple(m.rstrip("/") for m in mirrors)
        self.max_manifest_bytes = max_manifest_bytes
        self.max_layer_bytes = max_layer_bytes
        self.platform = platform or oci.host_platform()
        self._http = httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=True, trust_env=False
        )
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- where ----------------------------------------------------------
    def _scheme(self, host: str) -> str:
        if is_loopback(host) or host in self.insecure_registries:
            return "http"
        return "https"

    def bases(self, ref: Reference) -> list[str]:
        """The base URLs to try, in order: mirrors (docker.io only), then the registry."""
        own = f"{self._scheme(ref.api_host)}://{ref.api_host}"
        return [*self.mirrors, own] if ref.registry == DEFAULT_REGISTRY else [own]

    def _tried(self, ref: Reference) -> Iterator[tuple[str, bool]]:
        bases = self.bases(ref)
        for position, base in enumerate(bases):
            yield base, position == len(bases) - 1

    # -- pull -----------------------------------------------------------
    def resolve(
        self,
        ref: Reference,
        *,
        credentials: Credentials | None = None,
        cached: Callable[[str], bytes | None] | None = None,
    ) -> ResolvedImage:
        """Fetch and verify the manifest (through an index if any) and the config.

        ``cached(digest)`` gives a blob already stored (verified when it was):
        a config found there is not fetched again, so a re-pull of an image
        whose layers are present transfers only the manifest."""
        for base, last in self._tried(ref):
            creds = credentials if last else None  # never to a mirror
            try:
                return self._resolve(base, ref, creds, cached)
            except (NotFound, Unavailable, Forbidden) as err:
                if last or isinstance(err, DigestMismatch):
                    raise
                log.info("mirror %s failed for %s (%s); trying the next", base, ref, err)
        raise AssertionError("unreachable: bases() is never empty")

    def _resolve(
        self,
        base: str,
        ref: Reference,
        creds: Credentials | None,
        cached: Callable[[str], bytes | None] | None,
    ) -> ResolvedImage:
        data, content_type = self._manifest(base, ref, ref.target, creds)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.digest is not None and digest != ref.digest:
            raise DigestMismatch(f"{ref}: the manifest received hashes to {digest}")
        document = oci.parse_manifest(data, content_type)
        index_digest = None
        if isinstance(document, oci.Index):
            index_digest = digest
            chosen = oci.select_manifest(document, self.platform, ref.familiar())
            data, content_type = self._manifest(base, ref, chosen.digest, creds)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if digest != chosen.digest or len(data) != chosen.size:
                raise DigestMismatch(
                    f"{ref}: the {self.platform} manifest received is not {chosen.digest}"
                )
            document = oci.parse_manifest(data, content_type)
            if isinstance(document, oci.Index):
                raise InvalidArgument("manifest", f"{ref}: an index inside an index")
        config_bytes = cached(document.config.digest) if cached is not None else None
        if config_bytes is None:
            config_bytes = self._small_blob(base, ref, document.config, creds)
        config = oci.parse_config(config_bytes)
        if len(config.diff_ids) != len(document.layers):
            raise InvalidArgument(
                "config",
                f"{ref}: {len(document.layers)} layers but {len(config.diff_ids)} diff ids",
            )
        return ResolvedImage(
            reference=ref,
            digest=digest,
            manifest=document,
            manifest_bytes=data,
            config=config,
            config_bytes=config_bytes,
            index_digest=index_digest,
            source=base,
        )

    def _manifest(
        self, base: str, ref: Reference, target: str, creds: Credentials | None
    ) -> tuple[bytes, str]:
        url = f"{base}/v2/{ref.repository}/manifests/{target}"
        accept = ", ".join(oci.ACCEPTED_MANIFEST_TYPES)
        with self._get(url, ref, creds, {"Accept": accept}, what=("image", ref.familiar())) as r:
            data = self._read_bounded(r, self.max_manifest_bytes, f"the manifest of {ref}")
            return data, r.headers.get("content-type", "")

    def _small_blob(
        self, base: str, ref: Reference, desc: oci.Descriptor, creds: Credentials | None
    ) -> bytes:
        if desc.size > self.max_manifest_bytes:
            raise TooLarge(f"{ref}: the config of {desc.size} bytes is over the cap")
        url = f"{base}/v2/{ref.repository}/blobs/{desc.digest}"
        with self._get(url, ref, creds, {}, what=("blob", f"{desc.digest} of {ref}")) as r:
            data = self._read_bounded(r, desc.size, f"blob {desc.digest}")
        if len(data) != desc.size or "sha256:" + hashlib.sha256(data).hexdigest() != desc.digest:
            raise DigestMismatch(f"{ref}: blob {desc.digest} received does not match its digest")
        return data

    @contextlib.contextmanager
    def blob(
        self,
        ref: Reference,
        desc: oci.Descriptor,
        *,
        credentials: Credentials | None = None,
        source: str | None = None,
    ) -> Iterator[Iterator[bytes]]:
        """Stream a blob; the caller (``BlobStore``) verifies size and digest.

        ``source``: the base URL ``resolve`` used, so that a mirror that gave
        the manifest gives the layers too.
        """
        if desc.size > self.max_layer_bytes:
            raise TooLarge(
                f"{ref}: layer {desc.digest} has {desc.size} bytes, over the cap of "
                f"{self.max_layer_bytes}"
            )
        bases = [b for b, _ in self._tried(ref)]
        if source is not None and source in bases:
            bases = bases[bases.index(source) :]
        own = bases[-1]
        for base in bases:
            creds = credentials if base == own else None
            url = f"{base}/v2/{ref.repository}/blobs/{desc.digest}"
            streaming = False
            try:
                with self._get(url, ref, creds, {}, what=("blob", f"{desc.digest} of {ref}")) as r:
                    streaming = True
                    yield self._chunks(r, url)
                    return
            except (NotFound, Unavailable, Forbidden) as err:
                # Once bytes flow, a failure is the caller's (or the stream's):
                # no fallback then, the caller's ingest has to start over.
                if streaming or base == own or isinstance(err, DigestMismatch):
                    raise
                log.info("mirror %s failed for %s (%s); trying the next", base, ref, err)

    def _chunks(self, response: httpx.Response, url: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(1 << 20)
        except httpx.TransportError as err:
            raise Unavailable(f"{_host(url)}: the download broke off: {err}") from None

    # -- HTTP -------------------------------------------------------------
    @staticmethod
    def _read_bounded(response: httpx.Response, limit: int, what: str) -> bytes:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise TooLarge(f"{what}: {length} bytes, over the cap of {limit}")
        data = bytearray()
        try:
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise TooLarge(f"{what}: over the cap of {limit} bytes")
        except httpx.TransportError as err:
            raise Unavailable(f"{what}: the download broke off: {err}") from None
        return bytes(data)

    @contextlib.contextmanager
    def _get(
        self,
        url: str,
        ref: Reference,
        creds: Credentials | None,
        headers: dict[str, str],
        *,
        what: tuple[str, str],
    ) -> Iterator[httpx.Response]:
        """GET ``url`` (streamed), answering one auth challenge; map failures to errors."""
        host = _host(url)
        scope = f"repository:{ref.repository}:pull"
        key = (host, scope, creds.username if creds else "")
        with self._lock:
            token = self._tokens.get(key)
        auth_headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self._send(url, {**headers, **auth_headers})
        try:
            if response.status_code == 401:
                challenge = parse_challenge(response.headers.get("www-authenticate", ""))
                response.close()
                auth: httpx.Auth | None = None
                if challenge is not None and challenge.scheme == "bearer":
                    token = self._token(challenge, scope, creds, host)
                    with self._lock:
                        self._tokens[key] = token
                    auth_headers = {"Authorization": f"Bearer {token}"}
                elif challenge is not None and challenge.scheme == "basic" and creds:
                    auth = httpx.BasicAuth(creds.username, creds.password)
                    auth_headers = {}
                else:
                    raise _denied(ref, host, creds)
                response = self._send(url, {**headers, **auth_headers}, auth)
                if response.status_code == 401:
                    raise _denied(ref, host, creds)
            _check_status(response, host, what)
            yield response
        finally:
            response.close()

    def _send(
        self, url: str, headers: dict[str, str], auth: httpx.Auth | None = None
    ) -> httpx.Response:
        request = self._http.build_request("GET", url, headers=headers)
        try:
            response = self._http.send(request, stream=True, auth=auth)
        except httpx.TimeoutException as err:
            raise RegistryTimeout(
                f"registry {_host(url)} did not answer in time: {type(err).__name__}"
            ) from None
        except httpx.TransportError as err:
            raise RegistryUnavailable(
                f"registry {_host(url)} does not answer: {type(err).__name__}: {err}"
            ) from None
        log.debug("GET %s → %d", url, response.status_code)
        return response

    def _token(self, challenge: Challenge, scope: str, creds: Credentials | None, host: str) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise Unavailable(f"registry {host}: a Bearer challenge without a realm")
        realm_url = httpx.URL(realm)
        realm_host = realm_url.netloc.decode("ascii")
        if creds is not None and realm_url.scheme != "https" and self._scheme(realm_host) != "http":
            # Never send a password in clear text to a host that should speak TLS.
            raise Forbidden(f"registry {host}: token realm {realm} is not HTTPS")
        params = {"scope": scope}
        service = challenge.get("service")
        if service:
            params["service"] = service
        auth = httpx.BasicAuth(creds.username, creds.password) if creds else None
        try:
            response = self._http.get(realm_url, params=params, auth=auth)
        except httpx.TransportError as err:
            raise Unavailable(
                f"token service {realm_host} does not answer: {type(err).__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise Forbidden(
                f"registry {host}: the token service refused "
                + (f"the credentials of {creds.username!r}" if creds else "anonymous access")
            )
        if response.status_code != 200:
            raise Unavailable(f"token service {realm_host} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Unavailable(f"token service {realm_host} sent no token")
        return token


def _host(url: str) -> str:
    return httpx.URL(url).netloc.decode("ascii")


def _denied(ref: Reference, host: str, creds: Credentials | None) -> Forbidden:
    if creds is None:
        return Forbidden(
            f"pull access denied for {ref.familiar_name}: the repository does not exist "
            "or needs credentials"
        )
    return Forbidden(f"registry {host} refused the credentials of {creds.username!r}")


def _check_status(response: httpx.Response, host: str, what: tuple[str, str]) -> None:
    status = response.status_code
    if status == 200:
        return
    if status == 404:
        raise NotFound(*what)
    if status == 403:
        raise Forbidden(f"registry {host} denied access to {what[1]}")
    if status == 429 or status >= 500:
        raise RegistryUnavailable(f"registry {host} answered {status} for {what[1]}")
    raise Unavailable(f"registry {host} answered {status} for {what[1]} (expected 200)")
