"""runtime/offline.py on directories standing in for a created container's
image, writable layer and volume: which mount holds a path, reads from the
layers or the mount, writes into the mount or the upper dir."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime import offline
from runtime.errors import InvalidState
from runtime.records import ContainerRecord
from runtime.spec import ContainerSpec, Mount, RootfsPlan, Status


def _tar(*files: tuple[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _record(tmp_path: Path, *mounts: Mount, read_only: bool = False) -> ContainerRecord:
    image, layer = tmp_path / "image", tmp_path / "layer"
    (image / "etc" / "deep").mkdir(parents=True)
    (image / "etc" / "deep").chmod(0o750)
    (image / "etc" / "passwd").write_text("root\n")
    layer.mkdir()
    plan = RootfsPlan(
        root=str(layer / "root"), lower=str(image), layer=str(layer), read_only=read_only
    )
    spec = ContainerSpec(command=("true",), hostname="h", rootfs=plan, mounts=mounts)
    return ContainerRecord("c" * 64, "c", Status.created, spec, "2026-01-01T00:00:00Z")


def test_the_deepest_user_mount_holds_a_path(tmp_path: Path) -> None:
    outer = Mount("bind", "/data", source=str(tmp_path))
    inner = Mount("volume", "/data/vol", source=str(tmp_path), volume="vol")
    record = _record(tmp_path, outer, inner, Mount("tmpfs", "/run"))
    assert offline.user_mount(record, "/data/vol/.") == (inner, "/")  # its root: the same
    assert offline.user_mount(record, "/data/vol/d/.") == (inner, "/d/.")
    assert offline.user_mount(record, "/data/vol") == (inner, "/")
    assert offline.user_mount(record, "/data/vol/.") == (inner, "/")  # its root: the same
    assert offline.user_mount(record, "/data/vol/d/.") == (inner, "/d/.")
    assert offline.user_mount(record, "/data/volume") == (outer, "/volume")
    assert offline.user_mount(record, "/run/x") is None
    assert offline.user_mount(record, "/etc") is None


def test_a_volume_is_written_and_read_under_its_target_s_name(tmp_path: Path) -> None:
    data = tmp_path / "vol"
    data.mkdir()
    record = _record(tmp_path, Mount("volume", "/vol1", source=str(data), volume="vol"))
    assert offline.extract(record, "/vol1", _tar(("a.txt", b"a"))) == 1
    assert (data / "a.txt").read_bytes() == b"a"
    found, chunks = offline.read(record, "/vol1")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert sorted(tar.getnames()) == ["vol1", "vol1/a.txt"]
    assert found.name == "vol1"
    assert offline.stat(record, "/vol1/a.txt").size == 1


def test_outside_mounts_it_goes_to_the_upper_dir(tmp_path: Path) -> None:
    record = _record(tmp_path)
    assert offline.extract(record, "/etc/deep", _tar(("f", b"new"))) == 1
    upper = tmp_path / "layer" / "rw" / "upper"
    assert (upper / "etc" / "deep" / "f").read_bytes() == b"new"
    # The directories copied up keep the image's mode; the image is untouched.
    assert (upper / "etc" / "deep").stat().st_mode & 0o777 == 0o750
    assert not (tmp_path / "image" / "etc" / "deep" / "f").exists()
    assert offline.stat(record, "/etc/deep/f").size == 3
    assert offline.stat(record, "/etc/passwd").size == 5


def test_a_read_only_mount_or_root_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    data.mkdir()
    record = _record(tmp_path, Mount("bind", "/ro", source=str(data), read_only=True))
    with pytest.raises(InvalidState, match="read-only"):
        offline.extract(record, "/ro", _tar(("a", b"")))
    with pytest.raises(InvalidState, match="read-only root"):
        offline.extract(_record(tmp_path / "x", read_only=True), "/etc", _tar(("a", b"")))
    assert not os.listdir(data)
