"""runtime/reserve.py: the space held back for recording exits."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime.reserve import Reserve


def test_ensure_takes_the_blocks_and_release_gives_them_back(tmp_path: Path) -> None:
    held = Reserve(str(tmp_path / "reserve"), size=1 << 20)
    assert held.ensure()
    assert os.stat(held.path).st_blocks * 512 >= 1 << 20
    assert held.release()
    assert not os.path.exists(held.path)
    assert not held.release()  # nothing left to give


def test_without_room_for_the_headroom_it_is_not_taken(tmp_path: Path) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    held = Reserve(str(tmp_path / "reserve"), size=1 << 20)
    assert not held.ensure(headroom=free)
    assert not os.path.exists(held.path)


def test_a_filesystem_without_fallocate_gets_zeros(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    held = Reserve(str(tmp_path / "reserve"), size=3 << 16)
    assert held.ensure()
    assert os.path.getsize(held.path) == 3 << 16
