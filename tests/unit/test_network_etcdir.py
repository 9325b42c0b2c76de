"""runtime/network/etcdir.py: the containers' /etc files' dirs (the tmpfs
itself is mounted only by a real service: tests/e2e/test_pool_bridge.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime import libc
from runtime.network import etcdir


def test_a_containers_dir_is_made_under_the_root_once_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts: list[tuple[object, ...]] = []
    monkeypatch.setattr(libc, "mount", lambda *args: mounts.append(args))
    root = str(tmp_path / "etcfiles")
    etc = etcdir.EtcDir(root)
    first, second = etc.path("a" * 64), etc.path("b" * 64)
    etc.ensure(first)
    etc.ensure(second)
    etc.ensure(first)  # already there: kept
    assert mounts == [("tmpfs", root, "tmpfs", etcdir._FLAGS, etcdir.TMPFS_OPTIONS)]
    assert sorted(os.listdir(root)) == ["a" * 64, "b" * 64]
    assert etc.owns(first) and not etc.owns(str(tmp_path / "containers" / "c" / "etc"))
    older = str(tmp_path / "containers" / "c" / "etc")
    etc.ensure(older)  # an older record's dir, on disk as it was
    assert os.path.isdir(older) and len(mounts) == 1
    etc.remove("a" * 64)
    etc.sweep(["b" * 64, "c" * 64])
    assert os.listdir(root) == ["b" * 64]
    etc.sweep([])
    assert os.listdir(root) == []


def test_a_refused_mount_leaves_the_files_on_disk_and_other_errors_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise OSError(errno.EPERM, "mount: Operation not permitted")

    monkeypatch.setattr(libc, "mount", refuse)
    etc = etcdir.EtcDir(str(tmp_path / "etcfiles"))
    etc.ensure(etc.path("a"))
    assert os.path.isdir(etc.path("a"))

    def full(*args: object) -> None:
        raise OSError(errno.ENOMEM, "mount: Cannot allocate memory")

    monkeypatch.setattr(libc, "mount", full)
    other = etcdir.EtcDir(str(tmp_path / "other"))
    with pytest.raises(OSError):
        other.ensure(other.path("a"))
    etcdir.EtcDir(str(tmp_path / "nowhere")).sweep(["x"])  # nothing made yet: nothing to do
    assert not (tmp_path / "nowhere").exists()
