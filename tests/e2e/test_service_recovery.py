"""``Runtime``'s recovery, in process (root: real launcher, real containers).

What HTTP cannot reach: a dropped connection to a launcher that is still
alive, the leftover cleaners, and a recorded pid that now belongs to another
process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.service import find_launcher
from runtime import cgroups, leftovers, pids
from runtime.launcher import protocol
from runtime.procfs import process_start_time, process_state
from runtime.records import RUNNING, ContainerRecord, RecordStore
from runtime.runtime import Runtime
from runtime.security import devices
from runtime.spec import ContainerSpec, CreateRequest, Mount


def _eventually(check, timeout: float = 15.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    # The launcher of this state dir is ours: end it by its pid.
    pid = find_launcher(state)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def _runtime(state_dir: Path) -> Runtime:
    runtime = Runtime.open(str(state_dir))
    runtime.start()
    return runtime


def _drop_connection(runtime: Runtime) -> None:
    sock = runtime.launcher._sock
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)  # as if the socket broke; the launcher lives on


def test_a_dropped_connection_to_a_live_launcher_marks_nothing_lost(
    state_dir: Path, tmp_path: Path
) -> None:
    runtime = _runtime(state_dir)
    try:
        launcher = runtime.launcher.launcher_pid
        trigger = tmp_path / "go"
        running = runtime.create(CreateRequest(("sleep", "1000")))
        gated = runtime.create(
            CreateRequest(
                ("sh", "-c", f"while [ ! -e {trigger} ]; do sleep 0.02; done; exit 42"),
                # The host image hides the host's /tmp: bind the trigger's dir in.
                mounts=(Mount(type="bind", source=str(tmp_path), target=str(tmp_path)),),
            )
        )
        reconciles = runtime.reconciles
        _drop_connection(runtime)
        trigger.touch()  # it exits around the reconnection: before, during or after
        _eventually(lambda: runtime.reconciles > reconciles, what="the reconnection")
        assert runtime.launcher.launcher_pid == launcher  # the same launcher
        assert runtime.get(running.id).status == RUNNING
        assert runtime.get(running.id).error is None
        finished = runtime.wait(gated.id, timeout=15)
        assert (finished.status, finished.exit_code, finished.error) == ("exited", 42, None)
        killed = runtime.stop(running.id, timeout=0)
        assert (killed.exit_code, killed.signal) == (137, "SIGKILL")
    finally:
        runtime.close()


def test_leftover_cleaners_get_the_live_containers(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, frozenset[str]]] = []
    monkeypatch.setattr(leftovers, "CLEANERS", [lambda d, live: calls.append((d, live))])
    runtime = _runtime(state_dir)
    try:
        assert calls == [(str(state_dir), frozenset())]
        running = runtime.create(CreateRequest(("sleep", "1000")))
        done = runtime.create(CreateRequest(("true",)))
        runtime.wait(done.id, timeout=10)
        reconciles = runtime.reconciles
        _drop_connection(runtime)
        _eventually(lambda: runtime.reconciles > reconciles, what="the reconnection")
        assert calls[-1] == (str(state_dir), frozenset({running.id}))
        runtime.stop(running.id, timeout=0)
    finally:
        runtime.close()


def test_a_reused_pid_is_never_taken_for_the_container(state_dir: Path) -> None:
    """A record (and pid file) naming a pid that another process now has:
    start-up buries the record and leaves that process alone."""
    bystander = subprocess.Popen(["sleep", "1000"])
    try:
        start_time = process_start_time(bystander.pid)
        assert start_time is not None
        os.makedirs(state_dir / "containers" / ("a" * 64))
        store = RecordStore(str(state_dir / "mydocker.db"))
        store.insert(
            ContainerRecord(
                id="a" * 64,
                name="from-before-a-reboot",
                status=RUNNING,
                spec=ContainerSpec(command=("sleep", "1000"), hostname="x"),
                created_at="2026-01-01T00:00:00Z",
                pid=bystander.pid,
                pid_start_time=start_time - 1,  # an earlier process had this pid
            )
        )
        store.close()
        pids.write_pidfile(
            str(state_dir / "containers" / ("a" * 64) / "pid"), bystander.pid, start_time - 1
        )
        runtime = _runtime(state_dir)
        try:
            record = runtime.get("a" * 64)
            assert record.status == "exited" and record.exit_code is None
            assert record.error is not None and record.error.startswith("exit status lost")
            assert "killed" not in record.error
            assert bystander.poll() is None  # not killed: not the container
            with pytest.raises(Exception, match="not running"):
                runtime.open_pidfd("a" * 64)
        finally:
            runtime.close()
    finally:
        bystander.kill()
        bystander.wait()


def test_open_pidfd_names_the_running_container(state_dir: Path) -> None:
    runtime = _runtime(state_dir)
    try:
        running = runtime.create(CreateRequest(("sleep", "1000")))
        pidfd = runtime.open_pidfd(running.id)
        try:
            signal.pidfd_send_signal(pidfd, 0)  # it is alive, and it is ours
        finally:
            os.close(pidfd)
        runtime.stop(running.id, timeout=0)
    finally:
        runtime.close()


def test_a_waiter_that_gives_up_is_forgotten(state_dir: Path) -> None:
    runtime = _runtime(state_dir)
    try:
        running = runtime.create(CreateRequest(("sleep", "1000")))
        futures = [runtime.exit_future(running.id) for _ in range(50)]
        assert runtime.waiter_count() == 50
        for future in futures[:49]:
            future.cancel()  # what app/longpoll.py does when its client goes away
        assert runtime.waiter_count() == 1
        runtime.stop(running.id, timeout=0)
        assert futures[49].result(10).exit_code == 137
        assert runtime.waiter_count() == 0
    finally:
        runtime.close()


def test_children_never_released_die_with_their_launcher(state_dir: Path) -> None:
    """Created but not started (waiting for the go byte) when the launcher is
    killed: each sees EOF on its sync pipe and exits, and the records say so."""
    runtime = _runtime(state_dir)
    try:
        waiting = [runtime.create(CreateRequest(("true",), start=False)) for _ in range(3)]
        found = [pids.read_pidfile(runtime.pidfile_path(c.id)) for c in waiting]
        assert all(found) and all(c.status == "created" for c in waiting)
        reconciles = runtime.reconciles
        launcher = runtime.launcher.launcher_pid
        assert launcher is not None
        os.kill(launcher, signal.SIGKILL)
        _eventually(lambda: runtime.reconciles > reconciles, what="the reconnection")
        for container, (pid, start_time) in zip(waiting, found, strict=True):  # type: ignore[misc]
            _eventually(
                lambda p=pid, s=start_time: not pids.same_process(p, s) or process_state(p) == "Z",
                what=f"child {pid} to end",
            )
            record = runtime.get(container.id)
            assert record.status == "exited" and record.exit_code is None
            assert record.error is not None and record.error.startswith("exit status lost")
    finally:
        runtime.close()


def test_a_launcher_that_idles_out_leaves_no_cgroup_parent(state_dir: Path) -> None:
    """Its cgroup parents and its devices parent go with it (test runs used
    to leave a devices parent per state dir behind)."""
    runtime = _runtime(state_dir)
    try:
        record = runtime.create(CreateRequest(("true",)))
        runtime.wait(record.id)
        # The launcher keeps an exit until the API has acknowledged it (and a
        # closing API may leave one for the next): wait until it has let go.
        _eventually(
            lambda: not runtime.launcher.request(protocol.List()).containers,
            30,
            "the launcher to forget the acknowledged exit",
        )
    finally:
        runtime.close()
    _eventually(lambda: find_launcher(state_dir) is None, 30, "the launcher's idle exit")
    manager = cgroups.manager(str(state_dir))
    assert manager is not None
    assert not [p for p in manager.parent_dirs() if os.path.exists(p)]
    assert not os.path.exists(os.path.join(devices.ROOT, devices.parent_for(str(state_dir))))
