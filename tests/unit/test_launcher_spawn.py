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
from runtime.launcher import server, sparenet, spawn, transport, zygote
from runtime.launcher.ready import Source
from runtime.namespaces import Namespace
from runtime.network.attachment import Attachment
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
    def __init__(self, cgroup: FakeCgroup, made: Callable[[], None] = lambda: None) -> None:
        self.cgroup = cgroup
        self.made = made

    def create(self, name: str, limits: Limits, tuning: object = None) -> FakeCgroup:
        self.made()  # may raise, as a failed mkdir or limit would
        return self.cgroup

    def remove_parent(self) -> None:
        pass


@pytest.fixture
def events() -> Iterator[Events]:
    e = Events()
    yield e
    e.close()


#: The flags each fake clone was given, in order.
CLONE_FLAGS: list[int] = []


def fake_clone(
    body: Callable[[child.ChildFds], None],
) -> tuple[Callable[..., tuple[int, int]], Callable[..., int]]:
    """A clone(2) stand-in: fork, and run ``body`` instead of child.run (the
    second of the pair, what ``child.run`` is patched with)."""

    def clone(fn: Callable[[], int], flags: int) -> tuple[int, int]:
        CLONE_FLAGS.append(flags)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                fn()
            finally:
                os._exit(99)
        return pid, os.pidfd_open(pid)

    def run(spec: ContainerSpec, fds: child.ChildFds, tty_size: Any = None, *_: Any) -> int:
        os.close(fds.sync_write)  # as child.run does: EOF once the launcher is gone
        if not child._wait_for_go(fds.sync_read):
            os._exit(child.EXIT_SETUP_FAILED)
        body(fds)
        os._exit(0)

    return clone, run


@pytest.fixture
def lo_ups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pidfds whose namespace's lo the launcher brought up (the fake
    child shares the test's namespace: nothing is really set)."""
    calls: list[int] = []
    monkeypatch.setattr(spawn, "loopback_up", calls.append)
    return calls


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch, lo_ups: list[int]) -> Iterator[server.Launcher]:
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
    made: Callable[[], None] = lambda: None,
) -> tuple[FakeCgroup, transport.Client, socket.socket]:
    clone, run = fake_clone(body)
    monkeypatch.setattr(libc, "clone", clone)
    monkeypatch.setattr(child, "run", run)
    cgroup = FakeCgroup(join)
    manager = FakeManager(cgroup, made)
    launcher.spawner.cgroups = cast(cgroups.Manager, manager)  # what spawn calls
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


def assert_failed(peer: socket.socket, error: str) -> None:
    """The launch's reply is a failure with ``error``."""
    reply = json.loads(peer.recv(1 << 16))
    assert reply == {"req": 1, "ok": False, "kind": "failed", "error": error}


def open_fds_now() -> list[int]:
    """The fds open now that can be stat'ed (the listing's own fd is gone)."""
    fds = []
    for fd in open_fds():
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    return fds


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
    pidfile = tmp_path / "c1.pid"
    cgroup, client, peer = create(launcher, monkeypatch, tmp_path, body, join, pidfile=str(pidfile))
    assert_failed(peer, "cgroup: /sys/fs/cgroup/pids/x/cgroup.procs: No space left on device")
    assert launcher.entries == {}
    assert cgroup.removed
    assert not pidfile.exists()  # written before the join, gone with the child (rundir.py)
    with pytest.raises(ChildProcessError):  # killed and reaped by the launcher
        os.waitpid(pids[0], os.WNOHANG)
    peer.close()
    client.sock.close()
    assert open_fds() == before  # no pipe, pidfd or log fd of the child left open
    assert events.rest() == []  # it never ran the command


def test_the_id_maps_precede_the_go_byte_and_the_pidfile_and_cgroup_the_join(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    # The child's first mounts need its id maps.  The pid file is written
    # while the child builds its root, before the join and the joined byte:
    # a launcher that dies before it leaves a child that exits at EOF
    # (test_child: the joined wait), and from it on the API finds the
    # child by the file (runtime/pids.py).
    order: list[str] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if data == child.GO_BYTE:
            order.append("go")
        if data == child.JOINED_BYTE:
            order.append("joined")
        return real_write(fd, data)

    def write_pidfile(path: str, pid: int, start_time: int | None) -> None:
        order.append("pidfile")

    def write_maps(pid: int, host_id: int, size: int) -> None:
        order.append("maps")

    monkeypatch.setattr(spawn, "loopback_up", lambda pidfd: order.append("lo"))
    real_watch = launcher.watch.watch

    def watch(entry: Any) -> None:
        order.append("watch")
        real_watch(entry)

    monkeypatch.setattr(launcher.watch, "watch", watch)
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
    made = lambda: order.append("cgroup")  # noqa: E731
    _, _, peer = create(
        launcher, monkeypatch, tmp_path, body, join, pidfile=pidfile, spec=spec, made=made
    )
    # The cgroups are made after the go byte too, while the child builds its
    # root; the log watch is set up after the joined byte, while it finishes.
    assert order == ["maps", "go", "pidfile", "lo", "cgroup", "join", "joined", "watch"]
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


@pytest.mark.parametrize(
    ("network", "brought_up"),
    [(None, True), (Attachment(), True), (Attachment("host", "host"), False)],
    ids=["default", "none", "host"],
)
def test_the_launcher_brings_lo_up_in_the_childs_own_namespace_only(
    launcher: server.Launcher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lo_ups: list[int],
    network: Attachment | None,
    brought_up: bool,
) -> None:
    # The child no longer does (runtime/child.py): with the host's network
    # namespace there is nothing of the container's to bring up.
    def body(fds: child.ChildFds) -> None:
        child.wait_for_joined(fds.sync_read)

    spec = ContainerSpec(command=("true",), hostname="h", network=network)
    _, _, peer = create(launcher, monkeypatch, tmp_path, body, lambda pid: None, spec=spec)
    entry = launcher.entries["c1"]
    assert lo_ups == ([entry.process.pidfd] if brought_up else [])
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and exit_event["exit_code"] == 0
    peer.close()


def test_a_cgroup_that_cannot_be_made_fails_the_launch_and_kills_the_child(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    # Made after the clone: the child, building its root, is killed and
    # reaped before it ran anything of the command; nothing is left open.
    def body(fds: child.ChildFds) -> None:
        child.wait_for_joined(fds.sync_read)
        events.say("command")

    def made() -> None:
        raise cgroups.CgroupError("memory.limit_in_bytes: Invalid argument")

    joins: list[int] = []
    spec = ContainerSpec(command=("true",), hostname="h", limits=Limits(memory_bytes=64 << 20))
    before = open_fds()
    cgroup, client, peer = create(
        launcher, monkeypatch, tmp_path, body, joins.append, spec=spec, made=made
    )
    assert_failed(peer, "cgroup: memory.limit_in_bytes: Invalid argument")
    assert launcher.entries == {} and joins == [] and not cgroup.removed  # never made
    peer.close()
    client.sock.close()
    assert open_fds() == before
    assert events.rest() == []


def test_a_namespace_made_ahead_replaces_the_clones_and_lo(
    launcher: server.Launcher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lo_ups: list[int],
    events: Events,
) -> None:
    # runtime/launcher/sparenet.py: the child is cloned without CLONE_NEWNET,
    # gets the namespace's fd to join, lo is not brought up again, and the
    # launcher's copy of the fd is closed.
    spare = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    namespace = os.fstat(spare)
    monkeypatch.setattr(sparenet, "_made", lambda: spare)
    launcher.spawner.spare_net.make()

    def body(fds: child.ChildFds) -> None:
        events.say(f"netns-{int(fds.netns == spare)}")
        child.wait_for_joined(fds.sync_read)

    del CLONE_FLAGS[:]
    _, _, peer = create(launcher, monkeypatch, tmp_path, body, lambda pid: None)
    assert events.next() == "netns-1"
    assert not CLONE_FLAGS[0] & Namespace.NEWNET and CLONE_FLAGS[0] & Namespace.NEWPID
    assert lo_ups == []
    # Closed (its number may serve another fd since: not the namespace).
    open_now = {(st.st_dev, st.st_ino) for st in map(os.fstat, open_fds_now())}
    assert (namespace.st_dev, namespace.st_ino) not in open_now
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and exit_event["exit_code"] == 0
    peer.close()


class FakeCloner:
    """The pool's zygote, ready: ``send_cold`` records the request, ``wait``
    forks the child as the zygote's clone would (without the launcher's end
    of the sync pipe), or fails as ``outcome`` says."""

    def __init__(self, body: Callable[[child.ChildFds], None], log: list[str]) -> None:
        self.ready = True
        self.body, self.log = body, log
        self.lost_at_send = False
        self.outcome: Exception | None = None
        self.discarded: list[object] = []

    def send_cold(self, spec: ContainerSpec, fds: child.ChildFds, tty: Any, flags: int) -> object:
        if self.lost_at_send:
            self.ready = False
            raise zygote.Lost("zygote: EPIPE")
        self.log.append("sent")
        return (spec, fds, flags)

    def wait(self, ticket: Any) -> tuple[int, int]:
        self.log.append("waited")
        if self.outcome is not None:
            self.ready = False
            raise self.outcome
        _spec, fds, _flags = ticket
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(fds.sync_write)  # the zygote's clone never has it
                if child._wait_for_go(fds.sync_read):
                    self.body(fds)
            finally:
                os._exit(0)
        return pid, os.pidfd_open(pid)

    def discard(self, ticket: object) -> None:
        self.discarded.append(ticket)


def launch_through(
    launcher: server.Launcher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cloner: FakeCloner,
    made: Callable[[], None] = lambda: None,
) -> socket.socket:
    launcher.spawner.pool.zygote = cast(zygote.Zygote, cloner)  # type: ignore[union-attr]
    _, _, peer = create(launcher, monkeypatch, tmp_path, cloner.body, lambda pid: None, made=made)
    return peer


def test_a_ready_zygote_clones_a_cold_container_while_its_cgroup_is_made(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, events: Events
) -> None:
    def body(fds: child.ChildFds) -> None:
        child.wait_for_joined(fds.sync_read)
        events.say("command")

    order: list[str] = []
    cloner = FakeCloner(body, order)
    CLONE_FLAGS.clear()
    peer = launch_through(launcher, monkeypatch, tmp_path, cloner, lambda: order.append("made"))
    assert order == ["sent", "made", "waited"] and CLONE_FLAGS == []  # not cloned here
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and exit_event["exit_code"] == 0
    assert events.rest() == ["command"]
    peer.close()


@pytest.mark.parametrize("lost_at_send", [True, False])
def test_a_zygote_lost_before_or_during_a_cold_clone_leaves_it_to_the_launcher(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lost_at_send: bool
) -> None:
    order: list[str] = []
    cloner = FakeCloner(lambda fds: None, order)
    cloner.lost_at_send = lost_at_send
    cloner.outcome = None if lost_at_send else zygote.Lost("zygote: EOF")
    CLONE_FLAGS.clear()
    peer = launch_through(launcher, monkeypatch, tmp_path, cloner)
    assert len(CLONE_FLAGS) == 1  # cloned here, once: with fresh fds after a loss
    assert order == ([] if lost_at_send else ["sent", "waited"])
    reply, exit_event = replies(launcher, peer, 2)
    assert reply["ok"] is True and exit_event["exit_code"] == 0
    peer.close()


def test_a_cold_clone_whose_cgroup_cannot_be_made_is_discarded(
    launcher: server.Launcher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def made() -> None:
        raise cgroups.CgroupError("memory.limit_in_bytes: Invalid argument")

    cloner = FakeCloner(lambda fds: None, [])
    launcher.spawner.pool.zygote = cast(zygote.Zygote, cloner)  # type: ignore[union-attr]
    spec = ContainerSpec(command=("true",), hostname="h", limits=Limits(memory_bytes=64 << 20))
    _, client, peer = create(
        launcher, monkeypatch, tmp_path, cloner.body, lambda pid: None, spec=spec, made=made
    )
    assert_failed(peer, "cgroup: memory.limit_in_bytes: Invalid argument")
    assert len(cloner.discarded) == 1 and launcher.entries == {}
    peer.close()
    client.sock.close()
