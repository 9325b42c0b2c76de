"""runtime/images/building.py: a root's tar as a layered image with a config."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from runtime.errors import InvalidArchive, TooLarge
from runtime.images.building import BuildJob, History, merge_config
from runtime.images.layered import LayeredImage, LayeredImages
from runtime.images.oci import ImageConfig
from runtime.images.reference import parse


def root_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    return buffer.getvalue()


def build(store: LayeredImages, data: bytes, ref: str | None, **config: object) -> LayeredImage:
    job = BuildJob(store, max_bytes=1 << 20)
    job.write_all([data[:10], data[10:]])
    conf = ImageConfig(**config)  # type: ignore[arg-type]
    return job.finish(conf, parse(ref) if ref else None, History("sh", "me", "c"))


def test_a_gzip_tar_becomes_a_tagged_image_with_its_config(tmp_path: Path) -> None:
    store = LayeredImages(str(tmp_path))
    plain = root_tar()
    image = build(store, gzip.compress(plain), "test/built:v1", cmd=("cat", "/hello"), comment="c")
    diff_id = "sha256:" + hashlib.sha256(plain).hexdigest()
    assert image.entry.diff_ids == (diff_id,)  # the uncompressed tar is the layer
    assert (Path(image.layers[0]) / "hello").read_text() == "hi\n"
    assert image.tags == ("test/built:v1",)
    raw = store.blobs.read(image.entry.id)
    assert image.entry.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    doc = json.loads(raw)
    assert doc["config"]["Cmd"] == ["cat", "/hello"] and doc["comment"] == "c"
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert doc["history"][0]["created_by"] == "sh" and doc["history"][0]["author"] == "me"
    assert store.find("test/built:v1") is not None
    assert not list(tmp_path.glob(".build-*"))  # the spool is gone


def test_no_ref_is_an_untagged_image(tmp_path: Path) -> None:
    store = LayeredImages(str(tmp_path))
    image = build(store, root_tar(), None)
    assert image.tags == ()
    assert [e.id for e in store.dangling()] == [image.entry.id]


def test_a_bad_archive_leaves_nothing(tmp_path: Path) -> None:
    store = LayeredImages(str(tmp_path))
    with pytest.raises(InvalidArchive):
        build(store, b"not a tar at all" * 64, "x")
    assert store.catalog.entries() == []
    assert store.blobs.digests() == set() and store.layers.diff_ids() == set()
    assert not list(tmp_path.glob(".build-*"))


def test_the_spool_is_capped(tmp_path: Path) -> None:
    store = LayeredImages(str(tmp_path))
    job = BuildJob(store, max_bytes=8)
    with pytest.raises(TooLarge):
        job.write_all([b"x" * 9])
    assert not list(tmp_path.glob(".build-*"))


def test_merge_config_takes_what_the_user_sets() -> None:
    base = ImageConfig(
        cmd=("touch", "/x"),
        entrypoint=None,
        env=("PATH=/bin", "A=1"),
        working_dir="/srv",
        user="1000",
        exposed_ports=("80/tcp",),
        labels={"a": "1", "b": "1"},
        volumes=("/v",),
        parent="sha256:" + "a" * 64,
    )
    assert merge_config(None, base) == base
    user = ImageConfig(env=("A=2",), labels={"b": "2"}, exposed_ports=("90/tcp",), user="0")
    merged = merge_config(user, base)
    assert merged.env == ("A=2", "PATH=/bin")
    assert merged.labels == {"a": "1", "b": "2"}
    assert merged.exposed_ports == ("80/tcp", "90/tcp") and merged.volumes == ("/v",)
    assert (merged.cmd, merged.user, merged.working_dir) == (("touch", "/x"), "0", "/srv")
    assert merged.parent == base.parent
    argv = merge_config(ImageConfig(entrypoint=("cat",)), base)
    assert (argv.entrypoint, argv.cmd) == (("cat",), None)  # one argv part set: both the user's


def test_a_collect_keeps_the_layer_blobs_of_recorded_images(tmp_path: Path) -> None:
    """``docker save`` reads the layer blobs: a sweep after another image's
    delete must keep them (not only the unpacked layers)."""
    store = LayeredImages(str(tmp_path))
    kept = build(store, root_tar(), "kept")
    gone = build(store, gzip.compress(root_tar() + b"\0" * 1024), "gone")
    store.remove(gone.entry.id)
    layer_blob = kept.entry.diff_ids[0]  # uncompressed: its blob digest is its diff id
    assert store.blobs.has(layer_blob) and store.layers.has(layer_blob)
    store.remove(kept.entry.id)
    assert store.blobs.digests() == set() and store.layers.diff_ids() == set()
