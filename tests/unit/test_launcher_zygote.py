"""runtime/launcher/zygote.py: the protocol's branches on both sides, with
clone(2) faked (tests/e2e/test_pool*.py clone for real): a fill's fds and
reply, a failed clone, EOF and a silent zygote (``Lost``), fds received
close-on-exec, the READY handshake and the death of a real zygote process,
and the pool's fallback to cloning by itself."""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import child, libc
from runtime.launcher import pool, zygote
from runtime.namespaces import CLONE_PARENT
from runtime.spec import ContainerSpec, RootfsPlan

TEMPLATE = ContainerSpec(command=("true",), hostname="pool", rootfs=RootfsPlan(root="/r"))


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield ours, theirs
    ours.close()
    theirs.close()


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_received_fds_are_close_on_exec(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    read, write = os.pipe()
    os.set_inheritable(write, True)
    socket.send_fds(ours, [b"x"], [write])
    data, fds = zygote.receive(theirs, 4)
    assert data == b"x" and len(fds) == 1
    assert not os.get_inheritable(fds[0])  # else the error pipe outlives execve
    for fd in (read, write, *fds):
        os.close(fd)


def test_serve_clones_with_clone_parent_and_closes_what_it_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, int]] = []

    def fake_clone(body: Any, flags: int) -> tuple[int, int]:
        calls.append((body, flags))
        return 4242, os.dup(0)

    monkeypatch.setattr(libc, "clone", fake_clone)
    fds = [fd for pipe in (os.pipe(), os.pipe()) for fd in pipe]
    request = zygote.Fill(TEMPLATE, ("/procs",), ("/etc",), flags=0x11)
    reply, pidfd = zygote.serve(request, fds)
    assert reply == zygote.Cloned(4242) and pidfd >= 0
    os.close(pidfd)
    ((body, flags),) = calls
    assert flags == 0x11 | CLONE_PARENT  # the launcher stays the parent
    spec, child_fds, channel, procs = body.args
    assert spec == TEMPLATE and procs == ("/procs",) and channel == fds[2]
    assert (child_fds.sync_read, child_fds.error_write) == (fds[0], fds[1])
    assert child_fds.view == {"/etc": fds[3]}
    assert not any(is_open(fd) for fd in fds)  # the child has its copies


def test_serve_reports_a_failed_clone(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(body: Any, flags: int) -> tuple[int, int]:
        raise OSError(11, "clone: Resource temporarily unavailable")

    monkeypatch.setattr(libc, "clone", failing)
    fds = [*os.pipe(), *os.pipe()][:3]
    reply, pidfd = zygote.serve(zygote.Fill(TEMPLATE, (), None, 0), fds)
    assert pidfd == -1
    assert reply == zygote.Failed(11, "[Errno 11] clone: Resource temporarily unavailable")
    assert not any(is_open(fd) for fd in fds)


def test_serve_refuses_fds_that_do_not_match_the_view() -> None:
    fds = [*os.pipe(), *os.pipe()][:3]
    reply, pidfd = zygote.serve(zygote.Fill(TEMPLATE, (), ("/etc",), 0), fds)
    assert isinstance(reply, zygote.Failed) and pidfd == -1
    assert not any(is_open(fd) for fd in fds)


def ready_zygote(sock: socket.socket) -> zygote.Zygote:
    z = zygote.Zygote(selectors.DefaultSelector())
    z.sock, z.ready = sock, True
    return z


def fake_zygote(theirs: socket.socket, reply: zygote.Cloned | zygote.Failed | None) -> list[Any]:
    """Answer one fill as the zygote would (None: close instead)."""
    seen: list[Any] = []

    def answer() -> None:
        data, fds = zygote.receive(theirs, zygote.MAX_FDS)
        seen.append((pickle.loads(data), len(fds)))
        for fd in fds:
            os.close(fd)
        if reply is None:
            theirs.close()
            return
        sent = [os.dup(0)] if isinstance(reply, zygote.Cloned) else []
        socket.send_fds(theirs, [pickle.dumps(reply)], sent)
        for fd in sent:
            os.close(fd)

    thread = threading.Thread(target=answer)
    thread.start()
    seen.append(thread)
    return seen


def fill_fds() -> tuple[child.ChildFds, int, list[int]]:
    (r1, w1), (r2, w2) = os.pipe(), os.pipe()
    return child.ChildFds(r1, w2, -1, -1, -1), r2, [r1, w1, r2, w2]


def test_clone_sends_the_fill_and_returns_the_pid_and_pidfd(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, zygote.Cloned(77))
    fds, channel, opened = fill_fds()
    pid, pidfd = ready_zygote(ours).clone(TEMPLATE, fds, channel, ("/p",), 0x11)
    seen[0].join()
    assert pid == 77 and not os.get_inheritable(pidfd)
    assert seen[1] == (zygote.Fill(TEMPLATE, ("/p",), None, 0x11), 3)
    for fd in (pidfd, *opened):
        os.close(fd)


def test_a_failed_clone_raises_oserror(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, zygote.Failed(12, "clone: out of memory"))
    fds, channel, opened = fill_fds()
    z = ready_zygote(ours)
    with pytest.raises(OSError, match="out of memory") as caught:
        z.clone(TEMPLATE, fds, channel, (), 0)
    seen[0].join()
    assert caught.value.errno == 12 and z.ready  # the zygote itself is fine
    for fd in opened:
        os.close(fd)


def test_eof_loses_the_zygote(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, None)
    fds, channel, opened = fill_fds()
    z = ready_zygote(ours)
    with pytest.raises(zygote.Lost, match="EOF"):
        z.clone(TEMPLATE, fds, channel, (), 0)
    seen[0].join()
    assert not z.ready and z.sock is None
    for fd in opened:
        os.close(fd)


def test_a_silent_zygote_is_lost_after_the_timeout(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, _theirs = pair
    monkeypatch.setattr(zygote, "REPLY_TIMEOUT", 0.05)
    fds, channel, opened = fill_fds()
    z = ready_zygote(ours)
    with pytest.raises(zygote.Lost, match="timed out"):
        z.clone(TEMPLATE, fds, channel, (), 0)
    assert not z.ready
    for fd in opened:
        os.close(fd)


class LostZygote:
    ready = True

    def clone(self, *args: object) -> tuple[int, int]:
        raise zygote.Lost("zygote: EOF")


def test_the_pool_clones_by_itself_when_the_zygote_is_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloned: list[int] = []

    def fake_clone(body: Any, flags: int) -> tuple[int, int]:
        cloned.append(flags)
        return 5, 6

    monkeypatch.setattr(libc, "clone", fake_clone)
    p = pool.Pool(selectors.DefaultSelector(), None, zygote=LostZygote())  # type: ignore[arg-type]
    fds, channel, opened = fill_fds()
    assert p._clone_child(TEMPLATE, fds, channel, ()) == (5, 6)
    assert len(cloned) == 1 and not cloned[0] & CLONE_PARENT
    assert "the pool clones its children itself" in caplog.text
    for fd in opened:
        os.close(fd)


def turn(selector: selectors.BaseSelector, until: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline
        for key, mask in selector.select(timeout=0.1):
            key.data.handle(mask)


def test_a_real_zygote_says_ready_ends_on_stop_and_its_death_is_noticed() -> None:
    selector = selectors.DefaultSelector()
    z = zygote.Zygote(selector)
    z.start()
    turn(selector, lambda: z.ready)
    pid = z.pid
    z.stop()  # EOF, SIGKILL, reaped: no zombie left
    assert not os.path.exists(f"/proc/{pid}") and z.pidfd == -1
    z.start()
    turn(selector, lambda: z.ready)
    os.kill(z.pid, signal.SIGKILL)
    turn(selector, lambda: not z.ready)  # its pidfd: reaped, the pool clones itself
    assert z.sock is None and z.pidfd == -1 and not selector.get_map()


class CountingZygote:
    ready = False
    started = False

    def __init__(self) -> None:
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.started = True


def test_the_pools_first_templates_start_the_zygote_once() -> None:
    z = CountingZygote()
    p = pool.Pool(selectors.DefaultSelector(), None, zygote=z)  # type: ignore[arg-type]
    p.configure([])
    assert z.starts == 0  # no pool (--pool-size 0): no zygote
    p.configure([pool.Template(TEMPLATE, 2)])
    p.configure([pool.Template(TEMPLATE, 3)])
    assert z.starts == 1
