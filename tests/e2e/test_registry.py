"""Pulling from a real registry: Debian's docker-registry on loopback, images
pushed with skopeo, pulled with runtime/images (registry → blobs → layers),
and the unpacked layers mounted as an overlay to see the whiteouts work.

Groundwork of issue 14: the service's API does not pull yet, so these tests
drive the runtime modules directly.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import DigestMismatch, Forbidden, NotFound, Unavailable
from runtime.images.blobs import BlobStore
from runtime.images.layers import LayerStore
from runtime.images.oci import Platform
from runtime.images.pull import pull
from runtime.images.reference import parse
from runtime.images.registry import Credentials, RegistryClient
from tests.e2e.conftest import free_port
from tests.e2e.oci_registry import Layout, Proxy, Registry, base_layer, sha, top_layer

pytestmark = pytest.mark.skipif(
    not (shutil.which("docker-registry") and shutil.which("skopeo")),
    reason="needs docker-registry and skopeo (scripts/setup installs them)",
)

PASSWORD = "e2e-Secret-pw"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    layout = Layout(tmp_path_factory.mktemp("oci") / "layout")
    two = layout.image([base_layer(), top_layer()])
    layout.tag(two, "two")
    amd = layout.image([base_layer("amd64")], arch="amd64")
    arm = layout.image([base_layer("arm64")], arch="arm64")
    multi = layout.index(
        [
            {**arm, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {**amd, "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    )
    layout.tag(multi, "multi")
    return layout


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, images: Layout) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        reg.push(images.path, "two", "ns/two")
        reg.push(images.path, "multi", "ns/multi", all_platforms=True)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    p = Proxy(registry.host)
    yield p
    p.close()


@pytest.fixture
def stores(tmp_path: Path) -> tuple[BlobStore, LayerStore]:
    images = tmp_path / "state" / "images"
    return BlobStore(images / "blobs"), LayerStore(images / "layers")


def overlay_view(lowerdir: str, script: str) -> str:
    """Run ``script`` with the overlay mounted on $M, in a private mount namespace."""
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-euc",
            f'M=$(mktemp -d); mount -t overlay overlay -o "lowerdir={lowerdir}" "$M"; {script}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pull_two_layers_and_mount_them(registry: Registry, stores):
    blobs, layers = stores
    with RegistryClient() as client:
        image = pull(parse(f"{registry.host}/ns/two:two"), client, blobs, layers)
    assert len(image.layers) == 2
    assert image.config.cmd == ("/bin/sh",) and image.config.labels == {"test": "registry"}
    assert image.lowerdir == f"{image.layers[1]}:{image.layers[0]}"
    for path in blobs.path(image.digest), blobs.path(image.config_digest):
        assert path.is_file()
    assert image.layers[0].name == sha(base_layer()).removeprefix("sha256:")
    out = overlay_view(
        image.lowerdir,
        (
            'cat "$M/etc/motd"; ls "$M/opaque"; test ! -e "$M/etc/gone" && echo gone-is-gone; '
            '"$M/bin/busybox" echo busybox-runs'
        ),
    )
    assert out.split("\n") == ["new motd", "new", "gone-is-gone", "busybox-runs", ""]
    # each layer on its own still holds what the overlay hides
    assert (image.layers[0] / "etc" / "gone").is_file()
    assert sorted(p.name for p in (image.layers[0] / "opaque").iterdir()) == ["old1", "old2"]


def test_multi_arch_index_picks_the_platform(registry: Registry, stores):
    blobs, layers = stores
    for platform, marker in (
        (Platform("linux", "amd64"), "amd64"),
        (Platform("linux", "arm64", "v8"), "arm64"),
    ):
        with RegistryClient(platform=platform) as client:
            image = pull(parse(f"{registry.host}/ns/multi:multi"), client, blobs, layers)
        assert (image.layers[0] / "arch").read_text() == marker + "\n"
        assert image.config.architecture == marker


def test_a_corrupted_blob_fails_and_leaves_nothing(proxy: Proxy, stores):
    blobs, layers = stores
    layer_digest = sha(__import__("gzip").compress(top_layer(), mtime=0))
    proxy.corrupt.add(layer_digest)
    with RegistryClient() as client, pytest.raises(DigestMismatch) as info:
        pull(parse(f"{proxy.host}/ns/two:two"), client, blobs, layers)
    assert layer_digest in str(info.value)
    assert not blobs.has(layer_digest)
    assert not any((blobs.root / "ingest").iterdir())
    assert not layers.has(sha(top_layer()))
    assert not any((layers.root / "ingest").iterdir())


def test_concurrent_pulls_download_each_blob_once(proxy: Proxy, stores):
    blobs, layers = stores
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with RegistryClient() as client:
                pull(parse(f"{proxy.host}/ns/two:two"), client, blobs, layers)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    base = sha(__import__("gzip").compress(base_layer(), mtime=0))
    top = sha(__import__("gzip").compress(top_layer(), mtime=0))
    assert proxy.blob_gets[base] == 1 and proxy.blob_gets[top] == 1
    assert len(layers.diff_ids()) == 2


def test_unknown_tag_and_a_registry_that_does_not_answer(registry: Registry):
    with RegistryClient() as client:
        with pytest.raises(NotFound, match=f"{registry.host}/ns/two:nope"):
            client.resolve(parse(f"{registry.host}/ns/two:nope"))
        with pytest.raises(NotFound):
            client.resolve(parse(f"{registry.host}/ns/absent:two"))
        with pytest.raises(Unavailable, match="does not answer"):
            client.resolve(parse(f"127.0.0.1:{free_port()}/ns/two:two"))


def test_basic_auth_registry(
    tmp_path: Path, images: Layout, stores, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    reg = Registry(tmp_path / "auth-registry", users={"alice": PASSWORD}).start()
    try:
        reg.push(images.path, "two", "private/two", creds=f"alice:{PASSWORD}")
        ref = parse(f"{reg.host}/private/two:two")
        blobs, layers = stores
        with RegistryClient() as client:
            image = pull(ref, client, blobs, layers, credentials=Credentials("alice", PASSWORD))
            assert len(image.layers) == 2
            with pytest.raises(Forbidden, match="needs credentials"):
                client.resolve(ref)
            with pytest.raises(Forbidden, match="alice") as info:
                client.resolve(ref, credentials=Credentials("alice", PASSWORD + "x"))
    finally:
        reg.stop()
    assert PASSWORD not in caplog.text and PASSWORD not in str(info.value)
