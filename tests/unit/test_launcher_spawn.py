"""The launcher's cgroup join, overlapped with the child's set-up, without root.

``libc.clone`` is faked by a fork whose child plays ``child.run``'s part with
the real sync-pipe waits: it takes the go byte, says it is building its root,
waits for the joined byte (``child.wait_for_joined``) and only then says it
runs the command.  The cgroup is a fake that records the join.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from runtime import cgroups, child, libc, pids
from runtime.launcher import server, transport
from runtime.launcher.ready import Source
from runtime.security import devices, userns
from runtime.spec import ContainerSpec, Limits, to_dict

EVENT_TIMEOUT = 10.0


class Events:
    """What the fake child says, in order, over a pipe."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()

    def say(self, word: str) -> None:
        os.write(self.write_end, word.encode() + b"\n")

    def next(self) -> str:
        ready, _, _ = select.select([self.read_end], [], [], EVENT_TIMEOUT)
        assert ready, "the child said nothing"
        data = b""
        while not data.endswith(b"\n"):
            data += os.read(self.read_end, 1)
        return data.decode().strip()

    def rest(self) -> list[str]:
        """Everything said until every writer is gone."""
        os.close(self.write_end)
        self.write_end = -1
        with os.fdopen(self.read_end, "rb") as f:
            self.read_end = -1
            return f.read().decode().split()

    def close(self) -> None:
        for fd in (self.read_end, self.write_end):
            if fd >= 0:
                os.close(fd)


class FakeCgroup:
    def __init__(self, join: Callable[[int], None]) -> None:
        self.join = join
        self.added: list[int] = []
        self.removed = False

    def add(self, pid: int) -> None:
        self.join(pid)
        self.added.append(pid)

    def stats(self, live: bool = True) -> cgroups.Stats:
        return cgroups.Stats()

    def kill_all(self, rounds: int = 1) -> bool:
        return True

    def remove(self) -> bool:
        self.removed = True
        return True


class FakeManager:
    def __init__(self, cgroup: FakeCgroup) -> None:
        self.cgroup = cgroup

    def create(self, name: str, limits: Limits, tuning: object = None) -> FakeCgroup:
        return self.cgroup

    def remove_parent(self) -> None:
        pass


@pytest.fixture
def events() -> Iterator[Events]:
    e = Events()
    yield e
    e.close()


def fake_clone(
    body: Callable[[child.ChildFds], None],
) -> tuple[Callable[..., tuple[int, int]], Callable[..., int]]:
    """A clone(2) stand-in: fork, and run ``body`` instead of child.run (the
    second of the pair, what ``child.run`` is patched with)."""

    def clone(fn: Callable[[], int], flags: int) -> tuple[int, int]:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                fn()
            finally:
                os._exit(99)
        return pid, os.pidfd_open(pid)

    def run(spec: ContainerSpec, fds: child.ChildFds, tty_size: Any = None) -> int:
        os.close(fds.sync_write)  # as child.run does: EOF once the launcher is gone
        if not child._wait_for_go(fds.sync_read):
            os._exit(child.EXIT_SETUP_FAILED)
        body(fds)
        os._exit(0)

    return clone, run


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[server.Launcher]:
    monkeypatch.setattr(devices, "available", lambda: False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    launcher = server.Launcher(listener)
    launcher.selector.unregister(listener)  # never listening: select would say "ready"
    yield launcher
    for client in launcher.transport.clients:
        client.sock.close()
    launcher.selector.close()
    listener.close()


def create(
    launcher: server.Launcher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    body: Callable[[child.ChildFds], None],
    join: Callable[[int], None],
    start: bool = True,
    pidfile: str | None = None,
    spec: ContainerSpec | None = None,
) -> tuple[FakeCgroup, transport.Client, socket.socket]:
    clone, run = fake_clone(body)
    monkeypatch.setattr(libc, "clone", clone)
    monkeypatch.setattr(child, "run", run)
    cgroup = FakeCgroup(join)
    launcher.spawner.cgroups = cast(cgroups.Manager, FakeManager(cgroup))  # what spawn calls
    launcher.reaper.cgroups = launcher.spawner.cgroups
    ours, theirs = socket.socketpair()
    client = transport.Client(ours)
    launcher.transport.clients.append(client)  # exit events go to every client
    message = {
        "req": 1,
        "op": "create",
        "id": "c1",
        "spec": to_dict(spec or ContainerSpec(command=("true",), hostname="h")),
        "start": start,
        "stdout": str(tmp_path / "out"),
        "stderr": str(tmp_path / "err"),
        "pidfile": pidfile,
    }
    launcher.handle(client, message)
    return cgroup, client, theirs


def replies(launcher: server.Launcher, peer: socket.socket, count: int) -> list[dict[str, Any]]:
    """Run the loop's child handlers until ``count`` messages reached the client."""
    received = b""
    deadline = time.monotonic() + EVENT_TIMEOUT
    while received.count(b"\n") < count and time.monotonic() < deadline:
        for key, mask in launcher.selector.select(timeout=0.1):
            if key.data.source in (Source.ERROR_PIPE, Source.PIDFD):
                key.data.handle(mask)
        launcher.transport.flush_all()  # the end of the loop's turn sends the events
        launcher.reaper.tidy()  # then removes the cgroups of the turn's exits
        peer.setblocking(False)
        try:
            received += peer.recv(1 << 16)
        except BlockingIOError:
            pass
    return [json.loads(line) for line in received.splitlines()]


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def test_the_child_builds_its_root_during_the_join_and_runs_only_after_it(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    def body(fds: child.ChildFds) -> None:
        events.say("building")
        child.wait_for_joined(fds.sync_read)
        events.say("command")

    def join(pid: int) -> None:
        # The go byte went out before the join: the child is already at work
        # (this would time out if the launcher joined first), and it has not
        # run the command.
        assert events.next() == "building"
        events.say("joined")

    cgroup, _, peer = create(launcher, monkeypatch, tmp_path, body, join)
    entry = launcher.entries["c1"]
    assert cgroup.added == [entry.process.pid]
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and reply["exec_error"] is None
    assert exit_event["event"] == "exit" and exit_event["exit_code"] == 0
    assert events.rest() == ["joined", "command"]
    peer.close()


def test_a_failed_join_kills_the_waiting_child_and_fails_the_create(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    pids: list[int] = []

    def body(fds: child.ChildFds) -> None:
        events.say("building")
        child.wait_for_joined(fds.sync_read)
        events.say("command")

    def join(pid: int) -> None:
        pids.append(pid)
        assert events.next() == "building"
        raise cgroups.CgroupError("/sys/fs/cgroup/pids/x/cgroup.procs: No space left on device")

    before = open_fds()
    cgroup, client, peer = create(launcher, monkeypatch, tmp_path, body, join)
    reply = json.loads(peer.recv(1 << 16))
    assert reply == {
        "req": 1,
        "ok": False,
        "kind": "failed",
        "error": "cgroup: /sys/fs/cgroup/pids/x/cgroup.procs: No space left on device",
    }
    assert launcher.entries == {}
    assert cgroup.removed
    with pytest.raises(ChildProcessError):  # killed and reaped by the launcher
        os.waitpid(pids[0], os.WNOHANG)
    peer.close()
    client.sock.close()
    assert open_fds() == before  # no pipe, pidfd or log fd of the child left open
    assert events.rest() == []  # it never ran the command


def test_the_pidfile_and_id_maps_are_written_before_the_go_byte(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    # If the launcher dies after the go byte, the API finds the child by its
    # pid file (runtime/pids.py); the child's first mounts need its id maps.
    order: list[str] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if data == child.GO_BYTE:
            order.append("go")
        return real_write(fd, data)

    def write_pidfile(path: str, pid: int, start_time: int | None) -> None:
        order.append("pidfile")

    def write_maps(pid: int, host_id: int, size: int) -> None:
        order.append("maps")

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(pids, "write_pidfile", write_pidfile)
    monkeypatch.setattr(userns, "write_maps", write_maps)

    def body(fds: child.ChildFds) -> None:
        child.wait_for_joined(fds.sync_read)

    def join(pid: int) -> None:
        order.append("join")

    spec = ContainerSpec(command=("true",), hostname="h")
    spec = dataclasses.replace(
        spec, security=dataclasses.replace(spec.security, userns_host_id=100000)
    )
    pidfile = str(tmp_path / "pid")
    _, _, peer = create(launcher, monkeypatch, tmp_path, body, join, pidfile=pidfile, spec=spec)
    assert order == ["pidfile", "maps", "go", "join"]
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and exit_event["exit_code"] == 0
    peer.close()


def test_a_child_that_fails_its_setup_during_the_join_reports_its_own_error(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def body(fds: child.ChildFds) -> None:
        err = child.SetupError("mount /proc", errno.EPERM)
        child.report(fds.error_write, err)
        os._exit(err.exit_code)

    def join(pid: int) -> None:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it is gone, not reaped
        raise cgroups.CgroupError("cgroup.procs: No such process")

    cgroup, _, peer = create(launcher, monkeypatch, tmp_path, body, join)
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True
    assert reply["exec_error"]["message"] == "mount /proc: Operation not permitted"
    assert exit_event["exit_code"] == child.EXIT_SETUP_FAILED
    assert cgroup.removed
    peer.close()


def test_a_created_container_is_joined_at_create_and_gets_both_bytes_at_start(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    def body(fds: child.ChildFds) -> None:
        events.say("building")
        child.wait_for_joined(fds.sync_read)
        events.say("command")

    def join(pid: int) -> None:
        events.say("joined")

    cgroup, client, peer = create(launcher, monkeypatch, tmp_path, body, join, start=False)
    created = json.loads(peer.recv(1 << 16))
    assert created["ok"] is True and launcher.entries["c1"].state == "created"
    assert cgroup.added == [created["pid"]]
    assert events.next() == "joined"  # at create, while the child waits for its go
    ready, _, _ = select.select([events.read_end], [], [], 0.2)
    assert not ready
    launcher.handle(client, {"req": 2, "op": "start", "id": "c1"})
    assert events.next() == "building"
    assert events.next() == "command"
    started, exit_event = replies(launcher, peer, 2)
    assert started["req"] == 2 and started["ok"] is True
    assert exit_event["exit_code"] == 0
    peer.close()
