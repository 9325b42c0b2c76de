"""``Signaller``: signals for containers' PID 1, one, many, or to stop them.

    kill       one running container (InvalidState once it has exited)
    kill_many  every running container a Selector picks, in batches (``KillResult``)
    stop       SIGTERM, SIGKILL after a grace period (or at once: pid_namespaces(7))
    stop_all   every created or running container, in parallel (a clean shutdown)
    kill_and_wait  SIGKILL, then wait for the exit to be recorded
    open_pidfd     a pidfd for a running container's PID 1, checked against its start time

The launcher is the containers' parent and holds their pidfds, so every
signal goes through it: a recycled pid is never signalled by mistake.
"""

from __future__ import annotations

import logging
import signal as signal_module
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from runtime import init, pids
from runtime.errors import InvalidState, NotFound, NotModified, RuntimeFailure, Unavailable
from runtime.events import EventLog
from runtime.exits import Exits
from runtime.exitstatus import signal_name
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient, UnknownOp
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, RecordStore
from runtime.reports import container_event
from runtime.selection import Selector
from runtime.signals import catches, parse_signal

log = logging.getLogger("mydocker.runtime")

KILL_WAIT = 10.0
#: Docker's grace period before SIGKILL when neither the request nor the
#: container says (``StopTimeout``).
DEFAULT_STOP_TIMEOUT = 10.0
#: Containers per launcher request of a bulk kill.  A SIGKILL costs the
#: launcher ≈ 50 µs (measured: 2,000 in 92-107 ms), so
#: one request of 2,000 would hold its loop ≈ 0.1 s; a batch holds it
#: ≈ 25 ms whatever the selection's size, about one turn's worth of exits
#: (REAPS_PER_TURN), and the loop reaps between batches (docs/performance-log.md,
#: "Reaping 1,000").
KILL_BATCH = 500


@dataclass(frozen=True)
class KillResult:
    """What a bulk kill did: ``killed`` were signalled, ``not_running`` were
    selected but not running (created, exited, or exiting meanwhile), and
    ``not_found`` are the refs that name no container."""

    signal: int
    killed: tuple[str, ...]
    not_running: tuple[str, ...]
    not_found: tuple[str, ...]


class Signaller:
    def __init__(
        self, records: RecordStore, launcher: LauncherClient, exits: Exits, events: EventLog
    ) -> None:
        self.records = records
        self.launcher = launcher
        self._exits = exits
        self._events = events

    def kill(self, ref: str, signal: str | int = "SIGKILL") -> ContainerRecord:
        signo = parse_signal(signal)
        record = self.records.resolve(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        self._signal(record, signo)
        return self.records.resolve(record.id)

    def kill_many(self, selector: Selector, signal: str | int = "SIGKILL") -> KillResult:
        """Signal every running container the selector picks, in one launcher
        request per ``KILL_BATCH`` containers (``kill`` for each: PID 1 only).

        Everything is checked before anything is sent: a bad signal or
        selector (InvalidArgument) or an ambiguous ref (AmbiguousReference)
        signals nothing.  An unknown ref is reported, not an error: it may
        be a container that exited and was auto-removed a moment ago."""
        signo = parse_signal(signal)
        selector.check()
        not_found: list[str] = []
        if selector.refs is None:
            # Only running ones: a filter does not report the thousands of
            # exited containers it also matches.
            candidates = self.records.list(status=RUNNING)
        else:
            candidates = []
            for ref in selector.refs:
                try:
                    candidates.append(self.records.resolve(ref))
                except NotFound:
                    not_found.append(ref)
        chosen = list({r.id: r for r in candidates if selector.matches(r)}.values())
        by_id = {r.id: r for r in chosen}
        running = [r.id for r in chosen if r.status == RUNNING]
        not_running = [r.id for r in chosen if r.status != RUNNING]
        killed: list[str] = []
        for start in range(0, len(running), KILL_BATCH):
            batch = running[start : start + KILL_BATCH]
            done, gone = self._signal_batch([by_id[i] for i in batch], signo)
            killed += done
            not_running += gone
        return KillResult(signo, tuple(killed), tuple(not_running), tuple(not_found))

    def _signal_batch(
        self, records: list[ContainerRecord], signo: int
    ) -> tuple[list[str], list[str]]:
        """(signalled, not running) for one launcher request's worth of containers."""
        ids = [r.id for r in records]

        def report(reply: protocol.KillManyReply) -> None:
            by_id = {r.id: r for r in records}
            for container_id in reply.killed:
                self._report_kill(by_id[container_id], signo)

        try:
            reply = self.launcher.request(
                protocol.KillMany(tuple(ids), int(signo)), on_reply=report
            )
        except UnknownOp:
            # A launcher started by an older API (launchers outlive upgrades):
            # the single kill, one request each.
            done, gone = [], []
            for record in records:
                try:
                    self._signal(record, signo)
                except InvalidState:
                    gone.append(record.id)
                else:
                    done.append(record.id)
            return done, gone
        return list(reply.killed), list(reply.not_running)

    def _signal(self, record: ContainerRecord, signo: int) -> None:
        """Ask the launcher to signal a container; InvalidState once it has exited.

        The launcher forgets a container as soon as its exit is recorded (the
        ack), which can fall between our look at the record and this request:
        its "no such container" then means "not running", not a 404."""
        try:
            self.launcher.request(
                protocol.Kill(record.id, int(signo)),
                # On the reader thread, before the exit it may cause: kill, then die.
                on_reply=lambda _: self._report_kill(record, signo),
            )
        except NotFound as err:
            raise InvalidState(f"container {record.id} is not running (it has exited)") from err

    def _report_kill(self, record: ContainerRecord, signo: int) -> None:
        self._events.publish(container_event("kill", record, signal=signal_name(signo)))

    def stop(
        self, ref: str, timeout: float | None = None, *, only_running: bool = False
    ) -> ContainerRecord:
        """The container's stop signal (SIGTERM unless its options say
        otherwise), then SIGKILL once ``timeout`` seconds have passed
        (``None``: the container's own ``stop_timeout``, else 10; -1 too).

        The command is PID 1 of its namespace, which only receives signals it
        handles (pid_namespaces(7)): when it has no handler for the stop
        signal, the signal would be dropped, so we go straight to SIGKILL.

        An exited container is answered as it is, a created one killed;
        with ``only_running`` (Docker's stop) either raises ``NotModified``.
        """
        record = self.records.resolve(ref)
        if only_running and record.status != RUNNING:
            raise NotModified(f"container {record.id} is not running")
        if record.status == EXITED:
            return record
        stopped: ContainerRecord | None = None
        options = record.spec.options
        if timeout is None or timeout < 0:
            given = options.stop_timeout
            timeout = DEFAULT_STOP_TIMEOUT if given is None or given < 0 else float(given)
        signo = parse_signal(options.stop_signal)
        if record.status == RUNNING and self._catches(record, signo):
            try:
                self._signal(record, signo)
                stopped = self._exits.exit_future(record.id).result(timeout)
            except (FutureTimeout, InvalidState):
                pass
        if stopped is None:
            stopped = self.kill_and_wait(record)
        # As docker: kill (SIGTERM, SIGKILL), die, then stop.
        self._events.publish(container_event("stop", stopped))
        return stopped

    def _catches(self, record: ContainerRecord, signo: int) -> bool:
        # A reused pid is another process: ask only if it is still ours.
        if not pids.same_process(record.pid, record.pid_start_time):
            return False
        assert record.pid is not None
        if record.spec.init:
            return init.forwarding(record.pid)
        return catches(record.pid, signo)

    def open_pidfd(self, ref: str) -> int:
        """A pidfd for a running container's PID 1 (the caller closes it).

        For features that must reach the process from the API side (attach,
        exec: issue 6): the pidfd is checked against the recorded start time
        after it is opened, so it never names a process that reused the pid;
        setns(2) accepts it directly."""
        record = self.records.resolve(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        pidfd = pids.open_pidfd(record.pid, record.pid_start_time)
        if pidfd is None:
            raise InvalidState(f"container {record.id} is not running (its process is gone)")
        return pidfd

    def kill_and_wait(self, record: ContainerRecord) -> ContainerRecord:
        try:
            self._signal(record, signal_module.SIGKILL)
        except InvalidState:
            pass  # it exited meanwhile
        try:
            return self._exits.exit_future(record.id).result(KILL_WAIT)
        except FutureTimeout as err:
            raise Unavailable(f"container {record.id} did not die after SIGKILL") from err

    def stop_all(self, grace: float = 10.0) -> list[ContainerRecord]:
        """Stop every running or created container; return them as they ended."""
        targets = self.records.list(status=RUNNING) + self.records.list(status=CREATED)
        if not targets:
            return []
        log.info("stopping %d containers", len(targets))

        def stop_one(record: ContainerRecord) -> ContainerRecord | None:
            try:
                return self.stop(record.id, grace)
            except RuntimeFailure as err:
                log.error("stopping %s failed: %s", record.id, err)
                return None

        with ThreadPoolExecutor(min(32, len(targets)), thread_name_prefix="stop") as pool:
            stopped = list(pool.map(stop_one, targets))
        return [r for r in stopped if r is not None]
