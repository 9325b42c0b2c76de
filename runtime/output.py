"""``Output``: what a container or an exec wrote, read the same way for both.

    Target       one container or exec ("a target"): its id, spec, log dir,
                 and how to read its record again
    target       resolve a ref of either kind to its Target (404 if none)
    read         its bytes: one stream or stdout then stderr, or dated lines
                 joined when timestamps, since or until are asked for
    lines        ``(stream, unix ns, line)``, merged by time (``logs.dated``)
    chunks       ``(stream, chunk)`` as written (``logs.tagged``)
    pause        a follower's wait between idle polls, cut short by the exit

A follower reads until the record it reads again has exited; between idle
polls it waits on the target's exit future (``Exits``), so its last pass
comes as soon as the exit is recorded rather than up to a poll later
(``docker run`` answers when its attach stream ends).  Output the
time index does not date takes the exit's time once there is one (every
byte was written by then), else now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any, Protocol

from runtime import logs, timeutil
from runtime.errors import InvalidArgument, RuntimeFailure
from runtime.layout import LOG_STREAMS, Layout, log_in
from runtime.records import EXITED, ContainerRecord, ExecRecord, RecordStore
from runtime.spec import ContainerSpec, ExecSpec

#: What reads a target's record again (``None``: it is gone).
Reread = Callable[[], ContainerRecord | ExecRecord | None]


@dataclass(frozen=True)
class Target:
    """A container or an exec, as far as its output and input go."""

    kind: str  # "container" or "exec"
    id: str
    spec: ContainerSpec | ExecSpec
    log_dir: str
    current: Reread

    @property
    def tty(self) -> bool:
        return self.spec.tty

    @property
    def stdin(self) -> bool:
        """Whether it takes input: with stdin, or a tty (its pty)."""
        return self.spec.stdin or self.tty

    def log_paths(self, streams: Sequence[str] = LOG_STREAMS) -> list[str]:
        """Its log files for ``streams`` (``422`` for a stream that is not one)."""
        for name in streams:
            if name not in LOG_STREAMS:
                raise InvalidArgument("stream", f"must be one of {', '.join(LOG_STREAMS)}")
        return [log_in(self.log_dir, s) for s in streams]

    def running(self) -> bool:
        """Whether its record, read again, has not exited: a follower's end."""
        record = self.current()
        return record is not None and record.status != EXITED


class ExitFutures(Protocol):
    """What tells a follower that its target exited (runtime/exits.py)."""

    def exit_future(self, ref: str) -> Future[Any]: ...

    def exec_exit_future(self, ref: str) -> Future[Any]: ...


class Output:
    def __init__(
        self, layout: Layout, records: RecordStore, exits: ExitFutures | None = None
    ) -> None:
        """Without ``exits`` a follower sleeps whole polls."""
        self.layout = layout
        self.records = records
        self.exits = exits

    def pause(self, target: Target) -> logs.Pause:
        """Sleep up to ``seconds``, or until ``target`` has exited.

        A waiter is registered for each pause and dropped after it (a
        cancelled future leaves ``Exits`` at once), so a follower that stops
        asking leaves nothing behind.  A target whose future cannot be had
        (gone, the service shutting down) sleeps the whole poll."""
        exits = self.exits
        if exits is None:
            return time.sleep
        ended = exits.exec_exit_future if target.kind == "exec" else exits.exit_future

        def pause(seconds: float) -> None:
            try:
                future = ended(target.id)
            except RuntimeFailure:
                time.sleep(seconds)
                return
            wait_for([future], seconds)
            if not future.cancel() and future.exception() is not None:
                time.sleep(seconds)  # failed (the service closing): no busy loop

        return pause

    def target(self, kind: str, ref: str) -> Target:
        """The container (``kind="container"``) or exec ``ref`` names."""
        if kind == "exec":
            exec_record = self.records.resolve_exec(ref)
            exec_id = exec_record.id
            return Target(
                kind="exec",
                id=exec_id,
                spec=exec_record.spec,
                log_dir=self.layout.exec_dir(exec_record.container_id, exec_id),
                current=lambda: self.records.get_exec(exec_id),
            )
        record = self.records.resolve(ref)
        container_id = record.id
        return Target(
            kind="container",
            id=container_id,
            spec=record.spec,
            log_dir=self.layout.container_dir(container_id),
            current=lambda: self.records.get(container_id),
        )

    def read(
        self,
        target: Target,
        stream: str | None,
        tail: int | None,
        follow: bool,
        timestamps: bool,
        since: int | None,
        until: int | None,
    ) -> Iterator[bytes]:
        """One stream, or stdout then stderr.

        With ``timestamps``, ``since`` or ``until`` (unix ns) it goes line by
        line (``lines``), stdout and stderr merged by time, and with
        ``timestamps`` each line starts with its time (``rfc3339_nano``)
        and a space."""
        paths = target.log_paths([stream] if stream else LOG_STREAMS)
        if not (timestamps or since is not None or until is not None):
            return logs.stream(paths, tail, follow, target.running)
        fallback = _fallback_time(target.current)
        lines = logs.dated(paths, tail, follow, target.running, fallback, since, until, True, False)
        return logs.joined(lines, timestamps)

    def lines(
        self,
        target: Target,
        streams: Sequence[str],
        tail: int | None,
        follow: bool,
        since: int | None,
        until: int | None,
        heartbeat: bool,
    ) -> Iterator[tuple[str, int, bytes]]:
        """The output as ``(stream name, unix ns, line)``; see ``logs.dated``."""
        paths = target.log_paths(streams)
        fallback = _fallback_time(target.current)
        lines = logs.dated(
            paths,
            tail,
            follow,
            target.running,
            fallback,
            since,
            until,
            heartbeat,
            pause=self.pause(target),
        )
        return ((streams[index], when, line) for index, when, line in lines)

    def chunks(
        self,
        target: Target,
        streams: Sequence[str],
        tail: int | None,
        follow: bool,
        from_end: bool,
        heartbeat: bool,
    ) -> Iterator[tuple[str, bytes]]:
        """The output as ``(stream name, chunk)``; see ``logs.tagged``.

        The log files are opened before this returns, so a follower keeps
        reading what the target wrote even if it is removed."""
        paths = target.log_paths(streams)
        chunks = logs.tagged(
            paths, tail, follow, target.running, from_end, heartbeat, pause=self.pause(target)
        )
        return ((streams[index], chunk) for index, chunk in chunks)


def _fallback_time(current: Reread) -> Callable[[], int]:
    """The time of output the index does not date (written before it
    existed, or not seen yet): the exit's while there is one, as every
    byte was written by then; else now."""
    finished: list[int] = []

    def fallback() -> int:
        if finished:
            return finished[0]
        record = current()
        if record is not None and record.status == EXITED and record.finished_at:
            finished.append(timeutil.parse_ns(record.finished_at))
            return finished[0]
        return time.time_ns()

    return fallback
