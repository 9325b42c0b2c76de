"""runtime/pids.py: a process is its pid and its start time."""

from __future__ import annotations

import os
import subprocess
import sys

from runtime import pids
from runtime.procfs import parent_pid, process_start_time, process_state


def test_same_process_matches_only_the_recorded_start_time() -> None:
    me, start = os.getpid(), process_start_time(os.getpid())
    assert start is not None
    assert pids.same_process(me, start)
    assert not pids.same_process(me, start + 1)  # a later process with a reused pid
    assert not pids.same_process(me, None)
    assert not pids.same_process(None, start)


def test_open_pidfd_refuses_a_reused_pid() -> None:
    me, start = os.getpid(), process_start_time(os.getpid())
    assert start is not None
    fd = pids.open_pidfd(me, start)
    assert fd is not None
    os.close(fd)
    assert pids.open_pidfd(me, start + 1) is None
    assert pids.open_pidfd(-1, start) is None


def test_kill_orphan_kills_the_process_it_names_and_only_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start_time(child.pid)
        assert start is not None
        assert not pids.kill_orphan(child.pid, start - 1)  # not that process
        assert child.poll() is None
        assert pids.kill_orphan(child.pid, start)
        assert child.wait(10) == -9
        assert not pids.kill_orphan(child.pid, start)  # gone (reaped) now
    finally:
        child.kill()
        child.wait()


def test_pidfile_round_trip_and_garbage(tmp_path) -> None:
    path = str(tmp_path / "pid")
    assert pids.read_pidfile(path) is None
    pids.write_pidfile(path, 1234, 5678)
    assert pids.read_pidfile(path) == (1234, 5678)
    pids.write_pidfile(path, 1234, None)  # start time unknown: never matches
    assert pids.read_pidfile(path) is None
    for junk in ["", "12", "a b", "1 2 3", "-5 7", "\xff\xfe"]:
        (tmp_path / "pid").write_text(junk, encoding="latin-1")
        assert pids.read_pidfile(path) is None, junk


def test_a_pidfile_is_rewritten_whole_root_only_and_removed_once(tmp_path) -> None:
    path = str(tmp_path / "c.pid")
    pids.write_pidfile(path, 123456, 99)
    pids.write_pidfile(path, 7, 8)  # a relaunch: no tail of the longer one left
    assert pids.read_pidfile(path) == (7, 8)
    assert os.stat(path).st_mode & 0o777 == 0o600
    pids.remove_pidfile(path)
    assert not os.path.exists(path)
    pids.remove_pidfile(path)  # already gone: fine


def test_procfs_state_and_parent() -> None:
    assert process_state(os.getpid()) in {"R", "S"}
    assert parent_pid(os.getpid()) == os.getppid()
    assert process_state(2**22 + 1) is None  # above pid_max: never a process
    assert parent_pid(2**22 + 1) is None
