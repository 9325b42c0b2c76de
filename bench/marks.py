"""Marks of one launch in every process it crosses, for ``bench.httptimeline``.

    MARKS          id -> what happened, in the order a pooled launch meets them
    Board          a shared memory file of regions, one writer each: the API
                   (its threads under a lock), the launcher, and one per
                   child (its clone's number); a record is the mark, its
                   ``time.monotonic_ns()`` (one clock for every process),
                   the writing thread's CPU time and its id
    api_main       ``python -m bench.marks ARGS``: ``python -m app ARGS`` with
                   hooks (the ASGI app wrapped, runtime methods timed)
    launcher_main  ``python -m bench.marks --launcher ARGS``: the launcher with
                   hooks; the children it clones inherit them (and the board,
                   a MAP_SHARED mapping that outlives their closing of fds
                   and their pivot_root, until execve)

The hooks wrap the project's functions from outside (as bench.timeline's
do): the service runs unchanged otherwise.  A mark costs a clock read, a
CPU-clock read and a ``struct.pack_into`` (a few µs).  ``MYDOCKER_BENCH_MARKS``
names the board's file.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

ENV = "MYDOCKER_BENCH_MARKS"

MARKS = {
    0: "client: request sent",
    1: "api: ASGI app called (request parsed)",
    2: "api: handler entered (body validated)",
    3: "api: worker thread runs begin_create",
    9: "api: planned (id, spec; Launches.begin)",
    4: "api: record inserted",
    5: "api: sending the create to the launcher",
    6: "api: worker thread returns (begin_create done)",
    28: "launcher: request read (its loop woke)",
    29: "launcher: create's op begins (read, framed)",
    10: "launcher: create decoded (Spawner.clone)",
    11: "launcher: pooled child taken",
    12: "launcher: cgroups adopted (limits)",
    13: "launcher: stdio opened",
    37: "launcher: cgroups renamed",
    14: "launcher: pid file written",
    15: "launcher: sending the spec to the child",
    20: "child: claim received",
    21: "child: calls execve",
    16: "launcher: execve seen (error pipe EOF)",
    17: "launcher: reply built, sending",
    7: "api reader: reply received",
    8: "api reader: running recorded",
    18: "launcher: exit seen (reap begins)",
    19: "launcher: reaped (status, accounting)",
    22: "launcher: sending the exit event",
    30: "api reader: exit event received",
    31: "api reader: exit recorded",
    32: "api reader: exit acked, waiter woken",
    33: "api: event loop resumes the handler",
    34: "api: ContainerPublic built",
    35: "api: response head sent (serialised, middleware)",
    36: "api: response body handed to uvicorn",
    40: "client: response received",
    # The cold path (a pool miss) and the pool's refill.
    23: "launcher: clone returned (cold)",
    24: "launcher: child joined its cgroups (cold)",
    25: "launcher: joined byte written (release)",
    26: "launcher: pool fill begins (clone)",
    27: "launcher: pool fill clone returned",
}
CLIENT_SENT, CLIENT_RECEIVED, TAKEN, COLD_CLONE, FILL = 0, 40, 11, 23, 26

RECORD = struct.Struct("qqqq")  # mark, monotonic ns, thread CPU ns, thread id
HEADER = struct.Struct("q")  # records written (a ring: the index is count % capacity)
API, LAUNCHER = 0, 1
MAIN_RECORDS, CHILD_RECORDS, CHILD_SLOTS = 1 << 15, 16, 1024


def _region_size(records: int) -> int:
    return HEADER.size + records * RECORD.size


CHILDREN_AT = 2 * _region_size(MAIN_RECORDS)
SIZE = CHILDREN_AT + CHILD_SLOTS * _region_size(CHILD_RECORDS)


def _region(index: int) -> tuple[int, int]:
    """The region's offset and capacity: 0 the API, 1 the launcher, 2+ children."""
    if index < 2:
        return index * _region_size(MAIN_RECORDS), MAIN_RECORDS
    slot = (index - 2) % CHILD_SLOTS
    return CHILDREN_AT + slot * _region_size(CHILD_RECORDS), CHILD_RECORDS


@dataclass(frozen=True)
class Mark:
    mark: int
    ns: int
    cpu_ns: int
    #: (region kind, thread id): two marks of one thread have comparable CPU times.
    thread: tuple[str, int]


class Board:
    """The shared file, mapped; ``region`` is this process's (a child sets its own)."""

    def __init__(self, path: str, region: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self.shm = mmap.mmap(fd, SIZE, flags=mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self.region = region
        self._lock = threading.Lock()

    @staticmethod
    def create(path: str) -> None:
        with open(path, "wb") as f:
            f.truncate(SIZE)

    def reset(self, region: int) -> None:
        HEADER.pack_into(self.shm, _region(region)[0], 0)

    def mark(self, mark: int) -> None:
        ns, cpu, tid = time.monotonic_ns(), time.thread_time_ns(), threading.get_native_id()
        offset, capacity = _region(self.region)
        with self._lock:
            (count,) = HEADER.unpack_from(self.shm, offset)
            HEADER.pack_into(self.shm, offset, count + 1)
        at = offset + HEADER.size + (count % capacity) * RECORD.size
        RECORD.pack_into(self.shm, at, mark, ns, cpu, tid)


def read(path: str) -> list[Mark]:
    """Every mark on the board, in no particular order."""
    with open(path, "rb") as f:
        data = f.read()
    marks = []
    for index in range(2 + CHILD_SLOTS):
        offset, capacity = _region(index)
        (count,) = HEADER.unpack_from(data, offset)
        kind = "api" if index == API else "launcher" if index == LAUNCHER else f"child{index}"
        for i in range(min(count, capacity)):
            mark, ns, cpu, tid = RECORD.unpack_from(data, offset + HEADER.size + i * RECORD.size)
            marks.append(Mark(mark, ns, cpu, (kind, tid)))
    return marks


def _around(
    board: Board,
    fn: Callable[..., Any],
    before: int | None = None,
    after: int | None = None,
    when: Callable[..., bool] = lambda *a, **k: True,
) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        wanted = when(*args, **kwargs)
        if before is not None and wanted:
            board.mark(before)
        result = fn(*args, **kwargs)
        if after is not None and wanted and result is not None:
            board.mark(after)
        return result

    return run


# -- the API ---------------------------------------------------------------
class _Asgi:
    """The outermost ASGI layer: the request's arrival and its response's sends."""

    def __init__(self, app: Any, board: Board) -> None:
        self.app, self.board = app, board

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        board = self.board
        board.mark(1)

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                board.mark(35)
                return
            if message["type"] == "http.response.body" and not message.get("more_body"):
                board.mark(36)  # before: the client may have it before the await returns
            await send(message)

        await self.app(scope, receive, marked)


def api_main(argv: list[str]) -> int:
    from app import __main__ as service
    from app import launching
    from app.schemas.containers import ContainerPublic
    from runtime.asking import Asker
    from runtime.exits import Exits
    from runtime.launcher import protocol
    from runtime.launcher.client import LauncherClient
    from runtime.launches import Launches
    from runtime.records import RecordStore
    from runtime.runtime import Runtime

    board = Board(os.environ[ENV], API)
    create_app = service.create_app
    service.create_app = lambda *a, **k: _Asgi(create_app(*a, **k), board)  # type: ignore[assignment]
    real_launch = launching.launch

    async def launch(*args: Any, **kwargs: Any) -> Any:
        board.mark(2)
        result = await real_launch(*args, **kwargs)
        board.mark(33)
        return result

    launching.launch = launch  # type: ignore[assignment]
    Runtime.begin_create = _around(board, Runtime.begin_create, 3, 6)  # type: ignore[method-assign]
    Launches.begin = _both(board, Launches.begin, 9, None)  # type: ignore[method-assign]
    RecordStore.insert = _both(board, RecordStore.insert, None, 4)  # type: ignore[method-assign]
    LauncherClient.submit = _around(  # type: ignore[method-assign]
        board,
        LauncherClient.submit,
        5,
        None,
        lambda self, op, *a, **k: isinstance(op, protocol.Create),
    )
    Asker._record = _both(board, Asker._record, 7, 8)  # type: ignore[method-assign]
    Exits.on_event = _both(board, Exits.on_event, 30, None)  # type: ignore[method-assign]
    Exits._ack_then_wake = _both(board, Exits._ack_then_wake, 31, 32)  # type: ignore[method-assign]
    from_record = ContainerPublic.from_record.__func__  # type: ignore[attr-defined]
    ContainerPublic.from_record = classmethod(_both(board, from_record, None, 34))  # type: ignore[method-assign, assignment]
    return int(service.main(argv) or 0)


def _both(
    board: Board, fn: Callable[..., Any], before: int | None, after: int | None
) -> Callable[..., Any]:
    """Marks before and after, whatever ``fn`` returns."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            board.mark(before)
        try:
            return fn(*args, **kwargs)
        finally:
            if after is not None:
                board.mark(after)

    return run


# -- the launcher and its children ---------------------------------------------
def launcher_main(argv: list[str]) -> int:
    from runtime.launcher import server, startup

    board = Board(os.environ[ENV], LAUNCHER)
    # Started before the API, which may take longer than the launcher's idle
    # exit to come up on a loaded machine; the benchmark ends it (SIGTERM).
    server.IDLE_EXIT_SECONDS = 24 * 3600.0
    without_zygote()
    _hook_children(board)
    _hook_launches(board)
    _hook_transport(board)
    return startup.main(argv)


def without_zygote() -> None:
    """The pool's children cloned by the launcher itself, not by the zygote
    (runtime/launcher/zygote.py, a process of its own): hooks live in the
    launcher's memory, which only its own clones inherit.  So a marked run
    measures the pool as it was before the zygote (its children share the
    launcher's pages copy-on-write: docs/performance-log.md, "The zygote")."""
    from runtime.launcher import server

    real_init = server.Launcher.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **{**kwargs, "zygote": False})

    server.Launcher.__init__ = init  # type: ignore[method-assign]


def _hook_children(board: Board) -> None:
    """Each clone numbered (the child inherits its number: its region's);
    the child marks its claim and its execve."""
    from runtime import child, libc, pooled

    clones = [0]
    real_clone = libc.clone

    def clone(*args: Any, **kwargs: Any) -> Any:
        clones[0] += 1
        board.reset(1 + clones[0])
        return real_clone(*args, **kwargs)

    libc.clone = clone  # type: ignore[assignment]

    def in_child(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            board.region = 1 + clones[0]
            return fn(*args, **kwargs)

        return run

    pooled.run = in_child(pooled.run)  # type: ignore[assignment]
    child.run = in_child(child.run)  # type: ignore[assignment]
    pooled.receive = _both(board, pooled.receive, None, 20)  # type: ignore[assignment]
    real_run_steps = child.run_steps

    def run_steps(steps: list[tuple[str, Callable[[], None]]], *args: Any, **kw: Any) -> Any:
        return real_run_steps([*steps, ("mark execve", lambda: board.mark(21))], *args, **kw)

    child.run_steps = run_steps  # type: ignore[assignment]


def _hook_launches(board: Board) -> None:
    """The launcher's stamps (runtime/launchtrace.py), the claim's steps, the reap."""
    from runtime import pids
    from runtime.cgroups.base import Manager
    from runtime.launcher import claim
    from runtime.launcher.pool import Pool
    from runtime.launcher.reaper import Reaper
    from runtime.launchtrace import Stamps

    stamped = {"received": 10, "cloned": 23, "cgroup_joined": 24, "joined_sent": 25, "execd": 16}
    real_stamp = Stamps.stamp

    def stamp(self: Stamps, name: str) -> None:
        real_stamp(self, name)
        if name in stamped:
            board.mark(stamped[name])

    Stamps.stamp = stamp  # type: ignore[method-assign]
    Pool.claim = _around(board, Pool.claim, None, TAKEN)  # type: ignore[method-assign]
    Pool._clone = _both(board, Pool._clone, FILL, 27)  # type: ignore[method-assign]
    for manager in _subclasses(Manager):
        if "adopt" in vars(manager):
            manager.adopt = _both(board, manager.adopt, None, 12)  # type: ignore[method-assign]
        if "rename" in vars(manager):
            manager.rename = _both(board, manager.rename, None, 37)  # type: ignore[method-assign]
    claim.socket = _MarkedSocket(board)  # type: ignore[assignment]
    claim.open_stdio = _both(board, claim.open_stdio, None, 13)  # type: ignore[assignment]
    pids.write_pidfile = _both(board, pids.write_pidfile, None, 14)  # type: ignore[assignment]
    Reaper.reap = _around(board, Reaper.reap, 18, 19)  # type: ignore[method-assign]


def _hook_transport(board: Board) -> None:
    """The request read and handled, the reply and the exit event sent (marked
    before the send: the API may read it before the send returns)."""
    from runtime.launcher import messages
    from runtime.launcher.server import Launcher
    from runtime.launcher.transport import Transport

    broadcast = [False]
    real_broadcast, real_flush_all = Transport.broadcast, Transport.flush_all
    real_reply = Transport.reply

    def on_broadcast(self: Transport, event: Any) -> None:
        real_broadcast(self, event)
        broadcast[0] = True

    def flush_all(self: Transport) -> None:
        if broadcast[0]:
            broadcast[0] = False
            board.mark(22)
        real_flush_all(self)

    def reply(self: Transport, client: Any, req: int, message: Any) -> None:
        if req and isinstance(message, messages.Launched):
            board.mark(17)
        real_reply(self, client, req, message)

    Transport.read = _both(board, Transport.read, 28, None)  # type: ignore[method-assign]
    Launcher.handle = _around(  # type: ignore[method-assign]
        board, Launcher.handle, 29, None, lambda self, client, msg: msg.get("op") == "create"
    )
    Transport.broadcast = on_broadcast  # type: ignore[method-assign]
    Transport.flush_all = flush_all  # type: ignore[method-assign]
    Transport.reply = reply  # type: ignore[method-assign]


class _MarkedSocket:
    """The socket module as claim.py sees it: ``send_fds`` (the spec) marked first."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)

    def send_fds(self, *args: Any, **kwargs: Any) -> int:
        self._board.mark(15)
        return socket.send_fds(*args, **kwargs)


def _subclasses(cls: type) -> Iterator[type]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--launcher"]:
        import runtime.cgroups  # noqa: F401 - every Manager class, before the hooks

        return launcher_main(argv[1:])
    return api_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
