"""runtime/security/paths.py: what covers what, with a recording mount(2)
(the effects are tested in tests/e2e/test_rootfs.py, as root)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime import libc
from runtime.security import paths

Call = tuple[str | None, str, str | None, int]


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    calls: list[Call] = []

    def mount(
        source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        if not os.path.lexists(target):
            raise OSError(errno.ENOENT, f"mount {target}: {os.strerror(errno.ENOENT)}")
        calls.append((source, target, fstype, flags))

    monkeypatch.setattr(libc, "mount", mount)
    return calls


def test_mask_covers_a_directory_with_tmpfs_a_file_with_dev_null_and_skips_the_absent(
    tmp_path: Path, mounts: list[Call]
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("secret")
    for name in ("dir", "file", "absent"):
        paths.mask(str(tmp_path / name))
    assert [(source, Path(target).name, fstype) for source, target, fstype, _ in mounts] == [
        ("tmpfs", "dir", "tmpfs"),
        ("/dev/null", "file", None),
    ]
    assert mounts[0][3] & libc.MS_RDONLY and mounts[1][3] == libc.MS_BIND


def test_read_only_binds_then_remounts_and_skips_the_absent(
    tmp_path: Path, mounts: list[Call]
) -> None:
    (tmp_path / "sys").mkdir()
    paths.read_only(str(tmp_path / "absent"))  # ENOENT from mount(2): nothing to protect
    assert mounts == []
    paths.read_only(str(tmp_path / "sys"))
    assert [flags for _, _, _, flags in mounts] == [
        libc.MS_BIND | libc.MS_REC,
        libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | paths._LOCKED,
    ]
