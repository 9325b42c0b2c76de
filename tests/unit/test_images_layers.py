"""runtime/images/layers.py: unpack once per diff id, verify it, whiteouts.

Whiteouts are character devices 0/0 and opaque dirs a ``trusted.*`` xattr:
both need root, so those tests are marked ``root``; tests/e2e/test_registry.py
mounts the result as an overlay.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.errors import DigestMismatch, InvalidArchive, InvalidArgument
from runtime.images import oci
from runtime.images.layers import LayerStore


def tar_bytes(members: list[tuple[str, bytes | None]]) -> bytes:
    """A tar of (name, content) pairs; content None makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def diff_id(tar: bytes) -> str:
    return "sha256:" + hashlib.sha256(tar).hexdigest()


def write_blob(tmp_path: Path, data: bytes, name: str = "blob") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_unpack_gzip_and_plain_once_per_diff_id(tmp_path: Path):
    tar = tar_bytes([("etc", None), ("etc/hello", b"hi\n")])
    store = LayerStore(tmp_path / "layers")
    gz = write_blob(tmp_path, gzip.compress(tar), "gz")
    path = store.unpack(gz, oci.OCI_LAYER_GZIP, diff_id(tar))
    assert (path / "etc" / "hello").read_bytes() == b"hi\n"
    assert path == tmp_path / "layers" / "sha256" / diff_id(tar).removeprefix("sha256:")
    # the same diff id served uncompressed by another registry: same dir, no new unpack
    plain = write_blob(tmp_path, tar, "plain")
    (path / "marker").write_text("kept")
    assert store.unpack(plain, oci.OCI_LAYER, diff_id(tar)) == path
    assert (path / "marker").exists()
    assert not any((tmp_path / "layers" / "ingest").iterdir())


def test_wrong_diff_id_leaves_nothing(tmp_path: Path):
    tar = tar_bytes([("a", b"a")])
    store = LayerStore(tmp_path / "layers")
    wrong = "sha256:" + "1" * 64
    with pytest.raises(DigestMismatch, match="hashes to"):
        store.unpack(write_blob(tmp_path, gzip.compress(tar)), oci.OCI_LAYER_GZIP, wrong)
    assert not store.has(wrong) and not any((tmp_path / "layers" / "ingest").iterdir())


def test_damaged_gzip_and_hostile_member(tmp_path: Path):
    store = LayerStore(tmp_path / "layers")
    tar = tar_bytes([("a", b"a" * 1000)])
    with pytest.raises(InvalidArchive):
        store.unpack(
            write_blob(tmp_path, gzip.compress(tar)[:-30]), oci.OCI_LAYER_GZIP, diff_id(tar)
        )
    hostile = tar_bytes([("../escape", b"x")])
    with pytest.raises(InvalidArchive, match="'..'"):
        store.unpack(write_blob(tmp_path, hostile, "h"), oci.OCI_LAYER, diff_id(hostile))
    assert not store.diff_ids() and not any((tmp_path / "layers" / "ingest").iterdir())
    assert not (tmp_path / "escape").exists()


def test_unknown_media_type(tmp_path: Path):
    with pytest.raises(InvalidArgument):
        LayerStore(tmp_path).unpack(tmp_path, "application/x-rar", "sha256:" + "0" * 64)


def test_lowerdir_is_top_first(tmp_path: Path):
    store = LayerStore(tmp_path / "layers")
    ids = []
    for n in range(3):
        tar = tar_bytes([(f"f{n}", b"x")])
        store.unpack(write_blob(tmp_path, tar, f"b{n}"), oci.OCI_LAYER, diff_id(tar))
        ids.append(diff_id(tar))
    assert store.lowerdir(ids) == ":".join(str(store.path(d)) for d in reversed(ids))


@pytest.mark.root
def test_whiteouts_become_overlayfs_ones(tmp_path: Path):
    tar = tar_bytes(
        [
            ("etc", None),
            ("etc/.wh.gone", b""),
            ("opaque", None),
            ("opaque/.wh..wh..opq", b""),
            ("opaque/new", b"new"),
            (".wh..wh.plnk", None),
        ]
    )
    store = LayerStore(tmp_path / "layers")
    path = store.unpack(write_blob(tmp_path, tar), oci.OCI_LAYER, diff_id(tar))
    gone = os.lstat(path / "etc" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert not (path / "etc" / ".wh.gone").exists()
    assert os.getxattr(path / "opaque", "trusted.overlay.opaque") == b"y"
    assert not (path / "opaque" / ".wh..wh..opq").exists()
    assert sorted(os.listdir(path)) == ["etc", "opaque"]


@pytest.mark.root
def test_device_nodes_in_a_layer_are_skipped(tmp_path: Path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dev = tarfile.TarInfo("dev/null")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(dev)
    data = buf.getvalue()
    path = LayerStore(tmp_path / "layers").unpack(
        write_blob(tmp_path, data), oci.OCI_LAYER, diff_id(data)
    )
    assert os.listdir(path) == []  # not even the dev/ it would have needed
