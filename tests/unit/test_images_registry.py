"""runtime/images/registry.py against a fake registry (httpx.MockTransport).

The fake speaks the distribution API's pull endpoints and, when asked, the
token flow (``WWW-Authenticate: Bearer``) or basic auth; it records every
request so tests can check what was sent where.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import httpx
import pytest

from runtime.errors import (
    DigestMismatch,
    Forbidden,
    InvalidArgument,
    NotFound,
    TooLarge,
    Unavailable,
)
from runtime.images import oci
from runtime.images.reference import parse
from runtime.images.registry import (
    Challenge,
    Credentials,
    RegistryClient,
    is_loopback,
    parse_challenge,
)

PASSWORD = "s3cret-Pa55word"
USER = "alice"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self, auth: str = "none") -> None:
        self.auth = auth  # none, basic, bearer
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0

    def add_image(self, repo: str, tag: str, layer: bytes = b"layer") -> tuple[bytes, bytes]:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [sha(b"diff")]},
            }
        ).encode()
        self.blobs[sha(config)] = config
        self.blobs[sha(layer)] = layer
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": oci.OCI_MANIFEST,
                "config": {"mediaType": oci.OCI_CONFIG, "digest": sha(config), "size": len(config)},
                "layers": [
                    {"mediaType": oci.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}
                ],
            }
        ).encode()
        self.manifests[(repo, tag)] = (manifest, oci.OCI_MANIFEST)
        self.manifests[(repo, sha(manifest))] = (manifest, oci.OCI_MANIFEST)
        return manifest, config

    def authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.auth == "basic":
            good = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return header == f"Basic {good}"
        if self.auth == "bearer":
            return header == "Bearer tok-for-repository:ns/app:pull"
        return True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.host == "auth.example" and path == "/token":
            basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if request.headers.get("authorization") not in (None, f"Basic {basic}"):
                return httpx.Response(401)
            self.tokens_issued += 1
            scope = request.url.params["scope"]
            assert request.url.params["service"] == "reg.example"
            return httpx.Response(200, json={"token": f"tok-for-{scope}"})
        if not self.authorized(request):
            challenge = (
                'Basic realm="registry"'
                if self.auth == "basic"
                else 'Bearer realm="https://auth.example/token",service="reg.example",'
                'scope="repository:ns/app:pull"'
            )
            return httpx.Response(401, headers={"www-authenticate": challenge})
        parts = path.split("/")
        if path.startswith("/v2/") and "/manifests/" in path:
            repo, target = "/".join(parts[2:-2]), parts[-1]
            found = self.manifests.get((repo, target))
            if found is None:
                return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            return httpx.Response(200, content=found[0], headers={"content-type": found[1]})
        if path.startswith("/v2/") and "/blobs/" in path:
            data = self.blobs.get(parts[-1])
            if data is None:
                return httpx.Response(404)
            return httpx.Response(200, content=data)
        return httpx.Response(404)


def client(fake: FakeRegistry, **kwargs) -> RegistryClient:
    return RegistryClient(transport=httpx.MockTransport(fake), **kwargs)


def test_parse_challenge():
    assert parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    ) == Challenge(
        "bearer",
        (
            ("realm", "https://auth.docker.io/token"),
            ("service", "registry.docker.io"),
            ("scope", "repository:library/busybox:pull"),
        ),
    )
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge(
        "basic", (("realm", "Registry Realm"),)
    )
    quoted = parse_challenge('Bearer realm=bare, error="a \\"q\\""')
    assert quoted is not None and quoted.get("error") == 'a "q"'
    assert parse_challenge("") is None


def test_loopback_is_plain_http_others_https():
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.2:1") and is_loopback("[::1]:5")
    assert not is_loopback("reg.example:5000")
    c = RegistryClient(insecure_registries={"reg.lan:5000"})
    assert c.bases(parse("127.0.0.1:5000/x")) == ["http://127.0.0.1:5000"]
    assert c.bases(parse("reg.lan:5000/x")) == ["http://reg.lan:5000"]
    assert c.bases(parse("quay.io/x")) == ["https://quay.io"]
    assert c.bases(parse("busybox")) == ["https://registry-1.docker.io"]
    c.close()
    m = RegistryClient(mirrors=["http://127.0.0.1:5001/"])
    assert m.bases(parse("busybox")) == ["http://127.0.0.1:5001", "https://registry-1.docker.io"]
    assert m.bases(parse("quay.io/x")) == ["https://quay.io"]
    m.close()


def test_resolve_manifest_and_config():
    fake = FakeRegistry()
    manifest, config = fake.add_image("ns/app", "v1")
    with client(fake) as c:
        image = c.resolve(parse("reg.example/ns/app:v1"))
    assert image.digest == sha(manifest)
    assert image.config_bytes == config and image.config.cmd == ("sh",)
    accept = fake.requests[0].headers["accept"]
    for media_type in oci.ACCEPTED_MANIFEST_TYPES:
        assert media_type in accept
    assert str(fake.requests[0].url) == "https://reg.example/v2/ns/app/manifests/v1"


def test_index_picks_the_platform():
    fake = FakeRegistry()
    amd, _ = fake.add_image("ns/app", "amd", b"amd-layer")
    arm, _ = fake.add_image("ns/app", "arm", b"arm-layer")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": oci.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": oci.OCI_MANIFEST,
                    "digest": sha(arm),
                    "size": len(arm),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    "mediaType": oci.OCI_MANIFEST,
                    "digest": sha(amd),
                    "size": len(amd),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
            ],
        }
    ).encode()
    fake.manifests[("ns/app", "multi")] = (index, oci.OCI_INDEX)
    with client(fake, platform=oci.Platform("linux", "arm64", "v8")) as c:
        image = c.resolve(parse("reg.example/ns/app:multi"))
    assert image.digest == sha(arm) and image.index_digest == sha(index)
    assert image.manifest.layers[0].digest == sha(b"arm-layer")


def test_digest_reference_is_verified():
    fake = FakeRegistry()
    manifest, _ = fake.add_image("ns/app", "v1")
    wrong = "sha256:" + "0" * 64
    fake.manifests[("ns/app", wrong)] = (manifest, oci.OCI_MANIFEST)
    with client(fake) as c:
        assert c.resolve(parse(f"reg.example/ns/app@{sha(manifest)}")).digest == sha(manifest)
        with pytest.raises(DigestMismatch):
            c.resolve(parse(f"reg.example/ns/app@{wrong}"))


def test_unknown_tag_is_not_found_naming_the_reference():
    with client(FakeRegistry()) as c, pytest.raises(NotFound) as info:
        c.resolve(parse("reg.example/ns/nope:v9"))
    assert "reg.example/ns/nope:v9" in str(info.value)


def test_unsupported_media_type():
    fake = FakeRegistry()
    fake.manifests[("ns/app", "old")] = (
        b'{"schemaVersion": 1}',
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    with client(fake) as c, pytest.raises(InvalidArgument, match="unsupported media type"):
        c.resolve(parse("reg.example/ns/app:old"))


def test_registry_that_does_not_answer_is_unavailable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with RegistryClient(transport=httpx.MockTransport(refuse)) as c:
        with pytest.raises(Unavailable, match="does not answer"):
            c.resolve(parse("127.0.0.1:9/x"))


def test_server_error_is_unavailable():
    with RegistryClient(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as c:
        with pytest.raises(Unavailable, match="503"):
            c.resolve(parse("reg.example/x"))


def test_manifest_size_is_bounded():
    fake = FakeRegistry()
    fake.manifests[("ns/app", "big")] = (b" " * 5000, oci.OCI_MANIFEST)
    with client(fake, max_manifest_bytes=4096) as c, pytest.raises(TooLarge):
        c.resolve(parse("reg.example/ns/app:big"))


def test_layer_size_is_bounded():
    fake = FakeRegistry()
    fake.add_image("ns/app", "v1", b"x" * 100)
    with client(fake, max_layer_bytes=10) as c:
        image = c.resolve(parse("reg.example/ns/app:v1"))
        with pytest.raises(TooLarge, match="over the cap"):
            with c.blob(image.reference, image.manifest.layers[0]):
                pass


def test_blob_streams():
    fake = FakeRegistry()
    fake.add_image("ns/app", "v1", b"layer-bytes")
    with client(fake) as c:
        image = c.resolve(parse("reg.example/ns/app:v1"))
        with c.blob(image.reference, image.manifest.layers[0]) as chunks:
            assert b"".join(chunks) == b"layer-bytes"


def test_bearer_anonymous_token_flow_and_cache():
    fake = FakeRegistry(auth="bearer")
    fake.add_image("ns/app", "v1")
    with client(fake) as c:
        image = c.resolve(parse("reg.example/ns/app:v1"))
        with c.blob(image.reference, image.manifest.layers[0]) as chunks:
            b"".join(chunks)
    assert fake.tokens_issued == 1  # one token, reused for the config and the blob
    token_request = next(r for r in fake.requests if r.url.host == "auth.example")
    assert token_request.url.params["scope"] == "repository:ns/app:pull"
    assert "authorization" not in token_request.headers


def test_bearer_with_credentials():
    fake = FakeRegistry(auth="bearer")
    fake.add_image("ns/app", "v1")
    with client(fake) as c:
        c.resolve(parse("reg.example/ns/app:v1"), credentials=Credentials(USER, PASSWORD))
    token_request = next(r for r in fake.requests if r.url.host == "auth.example")
    assert token_request.headers["authorization"].startswith("Basic ")


def test_basic_auth():
    fake = FakeRegistry(auth="basic")
    fake.add_image("ns/app", "v1")
    with client(fake) as c:
        assert c.resolve(parse("reg.example/ns/app:v1"), credentials=Credentials(USER, PASSWORD))
        with pytest.raises(Forbidden, match="needs credentials"):
            c.resolve(parse("reg.example/ns/app:v1"))


def test_password_never_in_logs_or_errors(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    fake = FakeRegistry(auth="basic")
    fake.add_image("ns/app", "v1")
    wrong = Credentials(USER, PASSWORD + "-wrong")
    with client(fake) as c:
        c.resolve(parse("reg.example/ns/app:v1"), credentials=Credentials(USER, PASSWORD))
        with pytest.raises(Forbidden) as info:
            c.resolve(parse("reg.example/ns/app:v1"), credentials=wrong)
    bearer = FakeRegistry(auth="bearer")
    with client(bearer) as c, pytest.raises(Forbidden) as info2:
        c.resolve(parse("reg.example/ns/app:v1"), credentials=wrong)
    for text in (
        caplog.text,
        str(info.value),
        repr(info.value),
        str(info2.value),
        repr(wrong),
        str(wrong),
    ):
        assert PASSWORD not in text
    assert USER in str(info.value)
    assert caplog.records  # the client did log, just not the password


def test_credentials_never_go_to_a_mirror():
    mirror_requests: list[httpx.Request] = []
    fake = FakeRegistry(auth="basic")
    fake.add_image("library/busybox", "latest")

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "mirror.example":
            mirror_requests.append(request)
            return httpx.Response(404)
        return fake(request)

    with RegistryClient(
        transport=httpx.MockTransport(route), mirrors=["https://mirror.example"]
    ) as c:
        image = c.resolve(parse("busybox"), credentials=Credentials(USER, PASSWORD))
    assert image.source == "https://registry-1.docker.io"
    assert mirror_requests and all("authorization" not in r.headers for r in mirror_requests)


def test_mirror_serves_docker_io():
    fake = FakeRegistry()
    fake.add_image("library/busybox", "latest")
    hub: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "mirror.example":
            return fake(request)
        hub.append(request)
        return httpx.Response(500)

    with RegistryClient(
        transport=httpx.MockTransport(route), mirrors=["https://mirror.example"]
    ) as c:
        image = c.resolve(parse("busybox"))
        with c.blob(image.reference, image.manifest.layers[0], source=image.source) as chunks:
            assert b"".join(chunks) == b"layer"
    assert image.source == "https://mirror.example" and not hub
