"""runtime/rundir.py: the pid files' tmpfs, mounted at the launcher's start
and unmounted at its clean exit only when empty."""

from __future__ import annotations

import errno
import os

import pytest

from runtime import libc, rundir


def test_without_a_mount_it_is_a_plain_directory(tmp_path) -> None:
    path = str(tmp_path / "run")
    rundir.ensure(path, mount=False)
    rundir.ensure(path, mount=False)  # again: fine
    assert os.path.isdir(path) and not os.path.ismount(path)
    assert os.stat(path).st_mode & 0o777 == 0o700
    assert rundir.release(path) is False  # nothing mounted: left alone


def test_a_refused_mount_falls_back_to_the_disk(tmp_path, monkeypatch) -> None:
    def refuse(*args: object) -> None:
        raise OSError(errno.EPERM, "mount: Operation not permitted")

    monkeypatch.setattr(libc, "mount", refuse)
    path = str(tmp_path / "run")
    rundir.ensure(path)
    assert os.path.isdir(path) and not os.path.ismount(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_mounted_once_and_unmounted_only_when_empty(tmp_path) -> None:
    path = str(tmp_path / "run")
    rundir.ensure(path)
    try:
        assert os.path.ismount(path)
        rundir.ensure(path)  # a later launcher finds it mounted: not stacked
        with open("/proc/self/mountinfo") as f:
            assert sum(line.split()[4] == path for line in f) == 1
        with open(os.path.join(path, "c.pid"), "w") as f:
            f.write("1 2\n")
        assert rundir.release(path) is False  # an orphan's file: kept for the API
        assert os.path.ismount(path)
        os.unlink(os.path.join(path, "c.pid"))
        assert rundir.release(path) is True
        assert not os.path.ismount(path)
    finally:
        if os.path.ismount(path):
            libc.umount2(path, libc.MNT_DETACH)


def test_an_older_launchers_files_on_disk_are_not_hidden(tmp_path) -> None:
    path = tmp_path / "run"
    path.mkdir()
    (path / "c.pid").write_text("1 2\n")
    rundir.ensure(str(path))  # would mount over them: not done
    assert not os.path.ismount(path) and (path / "c.pid").read_text() == "1 2\n"


def test_the_reconciles_sweep_keeps_the_live_and_removes_the_rest(tmp_path) -> None:
    run = tmp_path / rundir.DIRNAME
    run.mkdir()
    for name in ("live.pid", "gone.pid", "other"):
        (run / name).write_text("1 2\n")
    rundir.sweep(str(tmp_path), frozenset({"live"}))
    assert sorted(os.listdir(run)) == ["live.pid", "other"]
    rundir.sweep(str(tmp_path / "nowhere"), frozenset())  # no run dir: nothing to do


def test_the_sweep_is_a_registered_leftovers_cleaner() -> None:
    from runtime import leftovers

    assert rundir.sweep in leftovers.CLEANERS
