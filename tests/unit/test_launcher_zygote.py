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
from runtime.launcher import pool, poolkeys, zygote
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
    sock.settimeout(zygote.REPLY_TIMEOUT)
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
        socket.send_fds(theirs, [zygote.encode_reply(reply)], sent)
        for fd in sent:
            os.close(fd)

    thread = threading.Thread(target=answer)
    thread.start()
    seen.append(thread)
    return seen


def fill_fds() -> tuple[child.ChildFds, int, list[int]]:
    (r1, w1), (r2, w2) = os.pipe(), os.pipe()
    return child.ChildFds(r1, w2, -1, -1, -1), r2, [r1, w1, r2, w2]


class Outcome:
    """A fill's two callbacks, recorded."""

    def __init__(self) -> None:
        self.done: list[tuple[int, int]] = []
        self.undone: list[Exception] = []

    def send(self, z: zygote.Zygote, flags: int = 0, procs: tuple[str, ...] = ()) -> list[int]:
        fds, channel, opened = fill_fds()
        z.send(
            TEMPLATE,
            fds,
            channel,
            procs,
            flags,
            lambda pid, pidfd: self.done.append((pid, pidfd)),
            self.undone.append,
        )
        return opened


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def test_a_fill_goes_out_and_its_reply_comes_on_the_loop(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, zygote.Cloned(77))
    z, outcome = ready_zygote(ours), Outcome()
    opened = outcome.send(z, 0x11, ("/p",))
    seen[0].join()
    assert seen[1] == (zygote.Fill(TEMPLATE, ("/p",), None, 0x11), 3)
    assert outcome.done == [] and len(z.pending) == 1  # the loop does not wait
    z._take()  # the socket is readable: the loop's turn
    ((pid, pidfd),) = outcome.done
    assert pid == 77 and not os.get_inheritable(pidfd) and not z.pending
    close_all([pidfd, *opened])


def test_a_failed_clone_undoes_the_fill(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, zygote.Failed(12, "clone: out of memory"))
    z, outcome = ready_zygote(ours), Outcome()
    opened = outcome.send(z)
    seen[0].join()
    z.settle()
    ((err,),) = [outcome.undone]
    assert isinstance(err, OSError) and err.errno == 12 and "out of memory" in str(err)
    assert z.ready and outcome.done == []  # the zygote itself is fine
    close_all(opened)


def test_eof_loses_the_zygote_and_undoes_the_fills_in_flight(
    pair: tuple[socket.socket, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    ours, theirs = pair
    seen = fake_zygote(theirs, None)
    z, outcome = ready_zygote(ours), Outcome()
    opened = outcome.send(z)
    seen[0].join()
    z._take()
    assert [type(e) for e in outcome.undone] == [zygote.Lost]
    assert not z.ready and z.sock is None and not z.pending
    assert "the pool clones its children itself" in caplog.text
    close_all(opened)


def test_a_silent_zygote_is_lost_when_the_pool_settles(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _theirs = pair
    z, outcome = ready_zygote(ours), Outcome()
    ours.settimeout(0.05)
    opened = outcome.send(z)
    z.settle()  # the pool drains: it waits for the reply, not for ever
    assert [type(e) for e in outcome.undone] == [zygote.Lost] and not z.ready
    close_all(opened)


def test_a_fill_that_cannot_go_out_raises_lost(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    theirs.close()
    z, outcome = ready_zygote(ours), Outcome()
    with pytest.raises(zygote.Lost):
        outcome.send(z)
    assert not z.pending and outcome.undone == [] and not z.ready


class LostZygote:
    def __init__(self) -> None:
        self.ready = True

    def ensure(self) -> None:
        pass  # lost just now: not started again within RESTART_DELAY

    def send(self, *args: object) -> None:
        self.ready = False  # as Zygote.stop leaves it
        raise zygote.Lost("zygote: EOF")


def warm_of(p: pool.Pool) -> pool.Warm:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.close()
    read, write = os.pipe()
    warm = pool.Warm(poolkeys.Template(TEMPLATE, 1), -1, -1, None, ours, write, read, None)
    p.children.append(warm)
    return warm


def test_a_fill_the_zygote_was_lost_in_fails_and_the_next_clones_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not cloned again with the lost fill's fds (a child of the zygote's
    may hold them): that fill fails; the next one is the launcher's own."""
    cloned: list[int] = []

    def fake_clone(body: Any, flags: int) -> tuple[int, int]:
        cloned.append(flags)
        return 5, 6

    monkeypatch.setattr(libc, "clone", fake_clone)
    p = pool.Pool(selectors.DefaultSelector(), None, zygote=LostZygote())  # type: ignore[arg-type]
    warm = warm_of(p)
    fds, channel, opened = fill_fds()
    with pytest.raises(zygote.Lost):
        p._clone_child(warm, TEMPLATE, fds, channel, ())
    assert cloned == []
    assert p._clone_child(warm, TEMPLATE, fds, channel, ()) == 6 and warm.pid == 5
    assert len(cloned) == 1 and not cloned[0] & CLONE_PARENT
    close_all(opened)
    p._release(warm)


def test_a_reply_adopts_the_child_and_a_failure_undoes_the_fill() -> None:
    p = pool.Pool(selectors.DefaultSelector(), None)
    warm = warm_of(p)
    p._adopt(warm, os.getpid(), os.pidfd_open(os.getpid()))  # any live process
    assert warm.pid_start_time is not None
    assert {key.fileobj for key in p.selector.get_map().values()} == {warm.pidfd, warm.channel}
    other = warm_of(p)
    ends = (other.sync_write, other.error_read)
    p._unfilled(other, OSError(12, "clone: out of memory"))
    assert p.children == [warm] and p.counts.failures == {other.template.key: 1}
    assert not any(is_open(fd) for fd in ends)  # a child the zygote made reads EOF
    p.selector.unregister(warm.pidfd)
    p.selector.unregister(warm.channel)
    p._release(warm)


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

    def __init__(self) -> None:
        self.ensured = 0

    def ensure(self) -> None:
        self.ensured += 1

    def settle(self) -> None:
        pass


def test_the_pools_templates_start_the_zygote() -> None:
    z = CountingZygote()
    p = pool.Pool(selectors.DefaultSelector(), None, zygote=z)  # type: ignore[arg-type]
    p.configure([])
    assert z.ensured == 0  # no pool (--pool-size 0): no zygote
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    assert z.ensured == 1


def test_a_zygote_that_cannot_start_is_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    z = zygote.Zygote(selectors.DefaultSelector())
    starts: list[int] = []

    def start() -> None:
        starts.append(1)
        z.starts += 1
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(z, "start", start)
    z.ensure()  # logged: the pool clones by itself
    z.stopped_at = time.monotonic() - zygote.RESTART_DELAY - 1
    z.ensure()  # given up: not started again, however long ago
    assert starts == [1] and not z.ready


def test_a_dead_zygote_is_started_again_after_a_delay_a_few_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    z = zygote.Zygote(selectors.DefaultSelector())

    def start() -> None:
        z.starts += 1
        z.pidfd = 1000 + z.starts  # running

    monkeypatch.setattr(z, "start", start)
    z.ensure()
    z.ensure()  # running: nothing to do
    assert z.starts == 1
    for _ in range(zygote.MAX_STARTS + 2):
        z.pidfd, z.stopped_at = -1, time.monotonic()  # died just now (``stop``)
        z.ensure()
        assert z.pidfd == -1  # not within RESTART_DELAY of its death
        z.stopped_at -= zygote.RESTART_DELAY
        z.ensure()
    assert z.starts == zygote.MAX_STARTS and z.pidfd == -1  # then the pool clones by itself


# -- cold containers (spawn.py ``Spawner._cloned``) ---------------------------
COLD = ContainerSpec(command=("true",), hostname="cold")


def test_serve_cold_runs_the_childs_body_with_the_fds_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, int]] = []

    def fake_clone(body: Any, flags: int) -> tuple[int, int]:
        calls.append((body, flags))
        return 4343, os.dup(0)

    monkeypatch.setattr(libc, "clone", fake_clone)
    fds = [fd for pipe in (os.pipe(), os.pipe(), os.pipe()) for fd in pipe]
    names = ("sync_read", "error_write", "stdout", "stderr", "netns")
    request = zygote.Cold(COLD, (24, 80), names, ("/",), flags=0x22)
    reply, pidfd = zygote.serve(request, fds)
    assert reply == zygote.Cloned(4343) and pidfd >= 0
    os.close(pidfd)
    ((body, flags),) = calls
    assert body.func is child.run and flags == 0x22 | CLONE_PARENT
    spec, child_fds, tty_size, prepared = body.args
    assert spec == COLD and tty_size == (24, 80) and prepared.argv
    assert (child_fds.sync_read, child_fds.error_write) == (fds[0], fds[1])
    assert (child_fds.stdin, child_fds.stdout, child_fds.stderr) == (-1, fds[2], fds[3])
    assert (child_fds.console, child_fds.sync_write, child_fds.netns) == (-1, -1, fds[4])
    assert child_fds.view == {"/": fds[5]}
    assert not any(is_open(fd) for fd in fds)  # the child has its copies


def test_serve_cold_reports_a_failed_clone(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(body: Any, flags: int) -> tuple[int, int]:
        raise OSError(11, "clone: Resource temporarily unavailable")

    monkeypatch.setattr(libc, "clone", failing)
    fds = [*os.pipe()]
    reply, pidfd = zygote.serve(
        zygote.Cold(COLD, None, ("sync_read", "error_write"), None, 0), fds
    )
    assert pidfd == -1 and isinstance(reply, zygote.Failed) and reply.errno == 11
    assert not any(is_open(fd) for fd in fds)


def cold_fds() -> tuple[child.ChildFds, list[int]]:
    (r1, w1), (r2, w2) = os.pipe(), os.pipe()
    return child.ChildFds(r1, w2, -1, w1, w1, sync_write=w1), [r1, w1, r2, w2]


def test_a_cold_clone_waits_for_its_reply_after_the_fills_sent_before(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The replies come in order: a fill's goes to the fill, then the cold
    clone's to its ticket; only the fds a cold child needs travel (not the
    launcher's end of the sync pipe)."""
    ours, theirs = pair
    z, outcome = ready_zygote(ours), Outcome()
    seen = fake_zygote(theirs, zygote.Cloned(11))
    opened = outcome.send(z)
    seen[0].join()
    fds, cold_opened = cold_fds()
    later = fake_zygote(theirs, zygote.Cloned(12))
    ticket = z.send_cold(COLD, fds, None, 0x33)
    later[0].join()
    assert later[1] == (
        zygote.Cold(COLD, None, ("sync_read", "error_write", "stdout", "stderr"), None, 0x33),
        4,
    )
    pid, pidfd = z.wait(ticket)
    assert pid == 12 and [p for p, _ in outcome.done] == [11] and not z.pending
    z._replied()  # the loop's stale readiness: no reply left, no wait
    close_all([pidfd, outcome.done[0][1], *opened, *cold_opened])


def test_a_cold_clone_the_zygote_failed_raises_and_one_it_was_lost_in_is_lost(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    z = ready_zygote(ours)
    fds, opened = cold_fds()
    seen = fake_zygote(theirs, zygote.Failed(12, "clone: out of memory"))
    ticket = z.send_cold(COLD, fds, None, 0)
    seen[0].join()
    with pytest.raises(OSError, match="out of memory"):
        z.wait(ticket)
    seen = fake_zygote(theirs, None)  # EOF with the clone in flight
    ticket = z.send_cold(COLD, fds, None, 0)
    seen[0].join()
    with pytest.raises(zygote.Lost):
        z.wait(ticket)
    assert not z.ready and z.sock is None
    close_all(opened)


def test_a_discarded_cold_clone_is_killed_and_reaped(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = pair
    z = ready_zygote(ours)
    fds, opened = cold_fds()
    victim = os.fork()
    if victim == 0:  # pragma: no cover - the child
        time.sleep(60)
        os._exit(0)
    pidfd = os.pidfd_open(victim)

    def answer() -> None:
        data, got = zygote.receive(theirs, zygote.MAX_FDS)
        close_all(got)
        socket.send_fds(theirs, [zygote.encode_reply(zygote.Cloned(victim))], [pidfd])

    thread = threading.Thread(target=answer)
    thread.start()
    ticket = z.send_cold(COLD, fds, None, 0)
    thread.join()
    z.discard(ticket)
    assert not os.path.exists(f"/proc/{victim}")  # killed and reaped
    os.close(pidfd)
    close_all(opened)


@pytest.mark.parametrize(
    "reply", [zygote.Cloned(4_000_000), zygote.Failed(None, "bad"), zygote.Failed(11, "again")]
)
def test_a_reply_survives_its_encoding(reply: zygote.Cloned | zygote.Failed) -> None:
    assert zygote.decode_reply(zygote.encode_reply(reply)) == reply


def test_a_cloned_reply_is_four_bytes_and_anything_else_is_refused() -> None:
    assert zygote.encode_reply(zygote.Cloned(7)) == (7).to_bytes(4, "little")
    with pytest.raises(ValueError, match="not a zygote's reply"):
        zygote.decode_reply(pickle.dumps(zygote.Cloned(7)))
