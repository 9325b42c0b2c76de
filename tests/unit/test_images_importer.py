"""runtime.images.importer: real extraction of tarballs built here, good and hostile."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.errors import InvalidArchive, TooLarge
from runtime.images.importer import extract

Member = tuple[tarfile.TarInfo, bytes]


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def archive(*members: Member, gz: bool = False) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return buffer


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs"
    path.mkdir()
    return path


def everything_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def test_a_rootfs_tarball_is_extracted_with_modes_links_and_times(dest: Path) -> None:
    stats = extract(
        archive(
            entry("./", tarfile.DIRTYPE, mode=0o755),
            entry("./bin/", tarfile.DIRTYPE),
            entry("./bin/tool", data=b"#!/bin/sh\necho ok\n", mode=0o4755),
            entry("./bin/sh", tarfile.SYMTYPE, linkname="tool"),
            entry("./etc/", tarfile.DIRTYPE),
            entry("./etc/mtab", tarfile.SYMTYPE, linkname="/proc/self/mounts"),
            entry("./etc/up", tarfile.SYMTYPE, linkname="../bin/tool"),
            entry("./bin/tool2", tarfile.LNKTYPE, linkname="./bin/tool"),
            entry("./run/fifo", tarfile.FIFOTYPE, mode=0o600),
            entry("./ro/", tarfile.DIRTYPE, mode=0o555),
            entry("./ro/inside", data=b"x"),
            gz=True,
        ),
        str(dest),
        max_bytes=1 << 20,
    )
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\necho ok\n"
    assert stat.S_IMODE((dest / "bin/tool").stat().st_mode) == 0o4755
    assert (dest / "bin/tool").stat().st_mtime == 1_700_000_000
    assert os.readlink(dest / "bin/sh") == "tool"
    # An absolute target is kept: inside the container it resolves in the image.
    assert os.readlink(dest / "etc/mtab") == "/proc/self/mounts"
    assert (dest / "bin/tool2").stat().st_ino == (dest / "bin/tool").stat().st_ino
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)
    # Directory modes come last, so a read-only directory still got its file.
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
    assert (dest / "ro/inside").read_bytes() == b"x"
    assert stats.size_bytes == len(b"#!/bin/sh\necho ok\n") + 1
    assert stats.files == 11


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([entry("../x", data=b"evil")], "'..' in a path name"),
        ([entry("a/../../x", data=b"evil")], "'..' in a path name"),
        ([entry("/etc/x", data=b"evil")], "absolute path names"),
        (
            [entry("up", tarfile.SYMTYPE, linkname="../../../../etc")],
            "points out of the image",
        ),
        (
            [entry("a/b/up", tarfile.SYMTYPE, linkname="../../..")],
            "points out of the image",
        ),
        (
            # The classic: a symlink to a host directory, then a file through it.
            [entry("link", tarfile.SYMTYPE, linkname="/tmp"), entry("link/evil", data=b"x")],
            "is a symlink or a file",
        ),
        ([entry("hard", tarfile.LNKTYPE, linkname="../outside")], "'..' in a path name"),
        ([entry("hard", tarfile.LNKTYPE, linkname="/etc/passwd")], "absolute path names"),
        ([entry("hard", tarfile.LNKTYPE, linkname="missing")], "not in the archive"),
        ([entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)], "device nodes"),
        ([entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1)], "device nodes"),
        (
            [entry("d/", tarfile.DIRTYPE), entry("d", data=b"file over a dir")],
            "would replace a directory",
        ),
    ],
)
def test_hostile_members_are_refused_naming_the_member(
    tmp_path: Path, dest: Path, members: list[Member], reason: str
) -> None:
    before = everything_under(tmp_path)
    with pytest.raises(InvalidArchive) as err:
        extract(archive(*members), str(dest), max_bytes=1 << 20)
    assert reason in str(err.value)
    assert repr(members[-1][0].name) in str(err.value)
    # Nothing escaped the destination.
    assert {p for p in everything_under(tmp_path) if not p.startswith("rootfs")} == {
        p for p in before if not p.startswith("rootfs")
    }


def test_the_symlink_trick_writes_nothing_outside(tmp_path: Path, dest: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = archive(
        entry("link", tarfile.SYMTYPE, linkname=str(outside)),
        entry("link/planted", data=b"x"),
    )
    with pytest.raises(InvalidArchive):
        extract(hostile, str(dest), max_bytes=1 << 20)
    assert list(outside.iterdir()) == []


def test_contents_over_the_cap_are_refused_before_writing_them(dest: Path) -> None:
    with pytest.raises(TooLarge, match="exceed the cap of 1000 bytes"):
        extract(archive(entry("big", data=b"x" * 1001)), str(dest), max_bytes=1000)
    assert not (dest / "big").exists()


def test_a_gzip_bomb_is_stopped_by_the_cap_on_contents(dest: Path) -> None:
    bomb = archive(entry("zeros", data=bytes(4 << 20)), gz=True)
    assert len(bomb.getvalue()) < 10_000
    with pytest.raises(TooLarge):
        extract(bomb, str(dest), max_bytes=1 << 20)


def test_too_many_members_are_refused(dest: Path) -> None:
    members = [entry(f"f{i}") for i in range(5)]
    with pytest.raises(TooLarge, match="more than 4 members"):
        extract(archive(*members), str(dest), max_bytes=1 << 20, max_members=4)


@pytest.mark.parametrize(
    "body",
    [b"", b"this is not a tar archive at all" * 40, gzip.compress(b"not a tar inside" * 40)],
)
def test_what_is_not_a_tar_is_refused(dest: Path, body: bytes) -> None:
    with pytest.raises(InvalidArchive, match="not a tar|damaged"):
        extract(io.BytesIO(body), str(dest), max_bytes=1 << 20)


def test_a_truncated_archive_is_refused(dest: Path) -> None:
    whole = archive(entry("file", data=os.urandom(100_000)), gz=True).getvalue()
    with pytest.raises(InvalidArchive, match="damaged"):
        extract(io.BytesIO(whole[: len(whole) // 2]), str(dest), max_bytes=1 << 20)


def test_a_later_member_replaces_an_earlier_file(dest: Path) -> None:
    extract(archive(entry("f", data=b"old"), entry("f", data=b"new")), str(dest), max_bytes=1 << 20)
    assert (dest / "f").read_bytes() == b"new"


def test_progress_is_reported_for_big_imports(dest: Path) -> None:
    calls: list[tuple[int, int]] = []
    data = bytes(65 << 20)
    extract(
        archive(entry("big", data=data), gz=True),
        str(dest),
        max_bytes=1 << 30,
        progress=lambda files, size: calls.append((files, size)),
    )
    assert calls == [(1, 65 << 20)]
