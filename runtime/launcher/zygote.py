"""The zygote: a small process that clones the warm pool's children.

    Zygote (the launcher's side)
    ├── ensure()     ``start()`` unless it runs (the pool's first templates
    │                and each fill call it): spawn ``python -m
    │                runtime.launcher.zygote FD PPID``; its READY message
    │                arrives on the loop (until then the pool clones by
    │                itself); after a death, again ``RESTART_DELAY`` later,
    │                at most ``MAX_STARTS`` times
    ├── ready        it said READY and has not died
    ├── send(...)    one fill: a ``Fill`` and the child's fds out; the pid
    │                and its pidfd come back on the loop (SCM_RIGHTS,
    │                unix(7)) to the fill's ``done``, or its ``undone``: a
    │                failed clone, or the zygote lost (EOF, its pidfd, no
    │                reply in time) with the fill in flight (a child may
    │                hold its fds already; later fills clone in the launcher)
    ├── send_cold(...) a cold container's clone (``child.run``, spawn.py):
    │                a ``Cold`` and its fds out; ``wait(ticket)`` blocks
    │                for its reply (the fills' replies before it go to
    │                theirs), ``discard(ticket)`` kills what it cloned
    ├── settle()     wait for the replies owed (the pool drains)
    └── stop()       EOF on its socket, then SIGKILL and reap
    main / serve     the zygote's side: PR_SET_PDEATHSIG, the seccomp
                     program compiled, ``gc.freeze()``, READY, then one clone
                     per request until EOF

Why (docs/performance-log.md, "The zygote"): a pooled child cloned from the
launcher shares the launcher's ~26 MiB copy-on-write while it waits, so
every page the launcher's loop writes meanwhile is copied (``do_wp_page``
in the launcher's profile), and the child copies and tears down (execve's
``exit_mmap``) that whole address space.  The zygote imports only what a
pooled child runs (runtime/pooled.py) and is idle between fills: its pages
stay shared and few.

Cold containers too, once it is ready (spawn.py, ``Spawner._cloned``):
under load most launches miss the pool, and a clone from the launcher
write-protects its ~15 MiB of anonymous pages, so every page its loop writes
next takes a fault (a copy while the child lives), and the child copies and
tears down the launcher's page tables.  The launcher sends the spec and the
fds, makes the container's cgroup while the zygote clones, then waits for
the pid (a blocking wait: everything after the clone needs it).

The launcher stays the parent: the zygote clones with ``CLONE_PARENT``
(clone(2); runc's nsexec does the same with ``CLONE_NEWPID``), so the
launcher reaps the child through the pidfd it gets back, exactly as for a
child it cloned itself (pool.py: the cgroups, the parked veth by
``/proc/<pid>/ns/net``, the overlay dir, the start time are all the
launcher's, done around the clone as before).  The zygote keeps none of a
child's fds: it closes them once the clone returns, so the launcher's
death still ends every pooled child (EOF on its pipes, runtime/pooled.py).
The zygote itself ends on EOF of its socket, and with the launcher
(PR_SET_PDEATHSIG, prctl(2)).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import pickle
import select
import selectors
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime import child, libc, pooled
from runtime.launcher.ready import Ready, Source
from runtime.namespaces import CLONE_PARENT
from runtime.security import seccomp
from runtime.spec import ContainerSpec

log = logging.getLogger("mydocker.launcher")

MODULE = "runtime.launcher.zygote"
#: A ``Cloned`` reply on the wire (``encode_reply``; a pickle is longer),
#: and its pidfd in the SCM_RIGHTS message.
_PID = struct.Struct("<i")
READY = b"ready"
#: A ``Fill`` is a pickled template spec (a few KiB).
MAX_MESSAGE = 1 << 20
#: The child's sync and error pipes, its channel, and the host view's trees.
MAX_FDS = 64
#: Seconds ``settle`` waits for a clone's reply before it gives the zygote
#: up (a clone takes 1-3 ms).
REPLY_TIMEOUT = 5.0
#: A zygote that died is started again by the next fill at least this many
#: seconds after its death, at most ``MAX_STARTS`` times in the launcher's
#: life: one that keeps dying (or cannot start) leaves the pool cloning by
#: itself, as before the zygote.
RESTART_DELAY = 1.0
MAX_STARTS = 5


@dataclass(frozen=True)
class Fill:
    """One pooled child to clone: ``pooled.run(template, ...)`` with the fds
    that come with the message (sync read end, error write end, channel,
    then one per ``view`` key, runtime/images/viewtrees.py)."""

    template: ContainerSpec
    procs: tuple[str, ...]
    view: tuple[str, ...] | None
    flags: int


@dataclass(frozen=True)
class Cold:
    """One cold container to clone: ``child.run(spec, ...)`` with the fds
    that come with the message, one per name of ``fds`` (``ChildFds``'
    fields), then one per ``view`` key."""

    spec: ContainerSpec
    tty_size: tuple[int, int] | None
    fds: tuple[str, ...]
    view: tuple[str, ...] | None
    flags: int


@dataclass(frozen=True)
class Cloned:
    """The child's pid; its pidfd comes with the message."""

    pid: int


@dataclass(frozen=True)
class Failed:
    """The clone failed in the zygote: the fill's ``undone`` gets an OSError."""

    errno: int | None
    message: str


class Ticket:
    """A cold clone in flight: its outcome once the reply came."""

    def __init__(self) -> None:
        self.outcome: tuple[int, int] | Exception | None = None

    def done(self, pid: int, pidfd: int) -> None:
        self.outcome = (pid, pidfd)

    def undone(self, err: Exception) -> None:
        self.outcome = err


class Lost(Exception):
    """The zygote is gone (EOF, its pidfd, no reply within ``REPLY_TIMEOUT``
    while the pool settles): the fills in flight fail, the next ones are
    cloned by the pool itself."""


#: A fill's callbacks: ``done(pid, pidfd)``, or ``undone(error)``.
Done = Callable[[int, int], None]
Undone = Callable[[Exception], None]


class Zygote:
    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.sock: socket.socket | None = None
        self.pid = -1
        self.pidfd = -1
        self.ready = False
        #: Starts so far (``MAX_STARTS`` once a start failed: given up).
        self.starts = 0
        #: When it was last stopped or lost (monotonic), for ``RESTART_DELAY``.
        self.stopped_at = -RESTART_DELAY
        #: The fills sent and not answered yet, oldest first.
        self.pending: deque[tuple[Done, Undone]] = deque()

    def start(self) -> None:
        """Spawn it; READY arrives on the loop (a few hundred ms of imports)."""
        self.starts += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            theirs.set_inheritable(True)
            argv = [sys.executable, "-m", MODULE, str(theirs.fileno()), str(os.getpid())]
            self.pid = os.posix_spawn(sys.executable, argv, os.environ)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pidfd = os.pidfd_open(self.pid)
        self.sock = ours
        ours.settimeout(REPLY_TIMEOUT)  # ``settle`` blocks on replies, at most this long
        self.selector.register(ours, selectors.EVENT_READ, Ready(Source.POOL, self._hello))
        self.selector.register(self.pidfd, selectors.EVENT_READ, Ready(Source.POOL, self._died))
        log.info("zygote %d started", self.pid)

    def ensure(self) -> None:
        """Started unless it runs (the pool's first templates, then each
        fill): again after a death, ``RESTART_DELAY`` later, up to
        ``MAX_STARTS`` starts; a start that fails is not tried again."""
        if self.pidfd >= 0 or self.starts >= MAX_STARTS:
            return
        if time.monotonic() - self.stopped_at < RESTART_DELAY:
            return
        try:
            self.start()
        except OSError as err:
            self.starts = MAX_STARTS
            log.warning("cannot start the zygote (%s): the pool clones by itself", err)
            return
        if self.starts > 1:
            log.info("zygote started again (start %d of %d)", self.starts, MAX_STARTS)

    def _hello(self, _mask: int) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(len(READY))
        except OSError:
            data = b""
        if data != READY:  # EOF: its pidfd says so next
            self.selector.unregister(self.sock)
            return
        self.ready = True
        replied = Ready(Source.POOL, lambda mask: self._replied())
        self.selector.modify(self.sock, selectors.EVENT_READ, replied)

    def _died(self, _mask: int) -> None:
        log.warning("zygote %d died: the pool clones its children itself", self.pid)
        while self.pending and self.sock is not None and _readable(self.sock):
            self._take()  # replies it sent before it died
        self.stop()

    def send(
        self,
        template: ContainerSpec,
        fds: child.ChildFds,
        channel: int,
        procs: tuple[str, ...],
        flags: int,
        done: Done,
        undone: Undone,
    ) -> None:
        """Ask for ``pooled.run``'s clone with ``flags``; the loop calls
        ``done(pid, pidfd)`` or ``undone(error)`` when the reply comes.
        ``Lost``: the request did not go out."""
        view = fds.view
        sent = [fds.sync_read, fds.error_write, channel, *(view.values() if view else ())]
        request = Fill(template, procs, None if view is None else tuple(view), flags)
        self._ask(request, sent, done, undone)

    def send_cold(
        self, spec: ContainerSpec, fds: child.ChildFds, tty_size: tuple[int, int] | None, flags: int
    ) -> Ticket:
        """Ask for a cold container's clone (``child.run``); ``wait`` for it.
        ``Lost``: the request did not go out."""
        names = tuple(name for name in _COLD_FDS if getattr(fds, name) >= 0)
        view = fds.view
        sent = [getattr(fds, name) for name in names] + list(view.values() if view else ())
        request = Cold(spec, tty_size, names, None if view is None else tuple(view), flags)
        ticket = Ticket()
        self._ask(request, sent, ticket.done, ticket.undone)
        return ticket

    def _ask(self, request: Fill | Cold, fds: list[int], done: Done, undone: Undone) -> None:
        """``request`` and ``fds`` out; its reply goes to ``done``/``undone``
        in the order asked.  ``Lost``: it did not go out."""
        assert self.sock is not None and self.ready
        try:
            socket.send_fds(self.sock, [pickle.dumps(request, pickle.HIGHEST_PROTOCOL)], fds)
        except OSError as err:  # EPIPE, ECONNRESET
            raise self._lost(f"zygote: {err}") from err
        self.pending.append((done, undone))

    def wait(self, ticket: Ticket) -> tuple[int, int]:
        """``(pid, pidfd)`` of a ``send_cold``; the replies of the fills sent
        before it go to theirs first.  OSError: the clone failed; ``Lost``:
        the zygote is gone (a child may hold the fds: they must not be reused)."""
        while ticket.outcome is None:
            if self.sock is None:
                ticket.undone(Lost("zygote: gone"))
                break
            self._take()
        if isinstance(ticket.outcome, Exception):
            raise ticket.outcome
        assert ticket.outcome is not None
        return ticket.outcome

    def discard(self, ticket: Ticket) -> None:
        """A cold clone no longer wanted: its child, if any, killed and reaped."""
        try:
            _pid, pidfd = self.wait(ticket)
        except (OSError, Lost):
            return
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        finally:
            os.close(pidfd)

    def _replied(self) -> None:
        """The loop saw a reply; a cold clone of the same turn may have
        taken it meanwhile (``wait``): then there is none to wait for."""
        if self.sock is not None and _readable(self.sock):
            self._take()

    def _take(self) -> None:
        """One reply, handed to the oldest fill waiting."""
        assert self.sock is not None
        try:
            data, got = receive(self.sock, 1)
        except OSError as err:  # the timeout (``settle``), ECONNRESET
            self._lost(f"zygote: {err}")
            return
        if not data:
            self._lost("zygote: EOF")
            return
        reply = decode_reply(data)
        if not self.pending or isinstance(reply, Failed) or len(got) != 1:
            for fd in got:
                os.close(fd)
        if not self.pending:
            log.warning("zygote: a reply no fill waits for: %r", reply)
            return
        done, undone = self.pending.popleft()
        if isinstance(reply, Failed):
            undone(OSError(reply.errno, reply.message))
        else:
            assert isinstance(reply, Cloned) and len(got) == 1
            done(reply.pid, got[0])

    def settle(self) -> None:
        """Wait for every reply owed (the pool drains: nothing in flight)."""
        while self.pending and self.sock is not None:
            self._take()

    def _lost(self, why: str) -> Lost:
        log.warning("%s: the pool clones its children itself", why)
        self.stop()
        return Lost(why)

    def stop(self) -> None:
        """Close its socket (it exits on EOF), kill it to be sure, reap it;
        the fills still waiting fail."""
        self.ready = False
        if self.sock is not None:
            if self.selector.get_map().get(self.sock.fileno()) is not None:
                self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None
        if self.pidfd >= 0:
            self.selector.unregister(self.pidfd)
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
            os.close(self.pidfd)
            self.pidfd = -1
            self.stopped_at = time.monotonic()
        pending, self.pending = self.pending, deque()
        for _done, undone in pending:
            undone(Lost("zygote: gone"))


def encode_reply(reply: Cloned | Failed) -> bytes:
    """A clone's reply: the pid in four bytes, not a pickle.  It is the
    first thing the zygote does after the clone, which write-protected every
    page it has: each page pickle's machinery touches then takes a fault (a
    copy while the child has not exec'd), a cost on every launch; a failure
    is rare and keeps its pickle."""
    if isinstance(reply, Cloned):
        return _PID.pack(reply.pid)
    return pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)


def decode_reply(data: bytes) -> Cloned | Failed:
    if len(data) == _PID.size:
        return Cloned(_PID.unpack(data)[0])
    reply = pickle.loads(data)
    if not isinstance(reply, Failed):
        raise ValueError(f"not a zygote's reply: {reply!r}")
    return reply


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def receive(sock: socket.socket, maxfds: int) -> tuple[bytes, list[int]]:
    """One message and its fds, made close-on-exec as they were sent: the
    error pipe's EOF at execve is how a launch learns that it succeeded
    (spawn.py), and SCM_RIGHTS gives fds without the flag (unix(7):
    MSG_CMSG_CLOEXEC, which Python 3.11's ``recv_fds`` does not pass on)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, maxfds)
    for fd in fds:
        os.set_inheritable(fd, False)
    return data, fds


# -- the zygote's side ------------------------------------------------------
#: The fds of a cold child that travel, by ``ChildFds`` field.
_COLD_FDS = ("sync_read", "error_write", "stdin", "stdout", "stderr", "console", "netns")


def serve(request: Fill | Cold, fds: list[int]) -> tuple[Cloned | Failed, int]:
    """Clone one child: a pooled one (``Fill``) or a cold container's
    (``Cold``); the reply and the pidfd (-1 on failure).  The received fds
    are closed here: the child has its copies."""
    try:
        body = _cold(request, fds) if isinstance(request, Cold) else _pooled(request, fds)
        pid, pidfd = libc.clone(body, request.flags | CLONE_PARENT)
        return Cloned(pid), pidfd
    except (OSError, ValueError) as err:
        return Failed(getattr(err, "errno", None), str(err)), -1
    finally:
        for fd in fds:
            os.close(fd)


def _pooled(request: Fill, fds: list[int]) -> Callable[[], int]:
    sync_read, error_write, channel, *trees = fds
    view: Mapping[str, int] | None = None
    if request.view is not None:
        view = dict(zip(request.view, trees, strict=True))
    child_fds = child.ChildFds(sync_read, error_write, -1, -1, -1, view=view)
    seccomp.prepare(request.template.security)  # once per program: the child inherits it
    return functools.partial(pooled.run, request.template, child_fds, channel, request.procs)


def _cold(request: Cold, fds: list[int]) -> Callable[[], int]:
    """``child.run`` as the launcher would clone it (spawn.py): the seccomp
    program and the child's steps built here, inherited."""
    named = dict(zip(request.fds, fds, strict=False))
    trees = fds[len(request.fds) :]
    view = None if request.view is None else dict(zip(request.view, trees, strict=True))
    child_fds = child.ChildFds(
        named["sync_read"],
        named["error_write"],
        named.get("stdin", -1),
        named.get("stdout", -1),
        named.get("stderr", -1),
        named.get("console", -1),
        view=view,
        netns=named.get("netns", -1),
    )
    spec, tty_size = request.spec, request.tty_size
    seccomp.prepare(spec.security)
    prepared = child.prepare(spec, child_fds, tty_size)
    return functools.partial(child.run, spec, child_fds, tty_size, prepared)


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    # prctl(2): SIGKILL when the launcher dies; it may have died already.
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return 0
    sock = socket.socket(fileno=fd)
    try:
        seccomp.warm()
    except Exception:  # noqa: BLE001, S110 - each child reports it by step, as in the launcher
        pass
    # Nothing imported so far is garbage: out of the collector's sight, its
    # objects' headers are never written, so their pages stay shared.
    gc.freeze()
    sock.send(READY)
    while True:
        data, fds = receive(sock, MAX_FDS)
        if not data:
            return 0  # the launcher closed its end
        reply, pidfd = serve(pickle.loads(data), fds)
        # sendmsg(2) itself, not socket.send_fds (an import and an array per
        # call): SCM_RIGHTS takes the fds as C ints (unix(7)).
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _PID.pack(pidfd))] if pidfd >= 0 else []
        sock.sendmsg([encode_reply(reply)], rights)
        if pidfd >= 0:
            os.close(pidfd)


if __name__ == "__main__":
    # Run as ``-m``, this file is ``__main__``: the protocol's classes must be
    # pickled under the module's own name, which the launcher imports.
    from runtime.launcher import zygote

    sys.exit(zygote.main(sys.argv[1:]))
