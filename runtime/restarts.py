"""Restart policies: an exited container started again, as Docker does.

    should_restart   the policy's answer for one exit (pure)
    next_delay       Docker's back-off: 100 ms, doubled after each run shorter
                     than 10 s, back to 100 ms after a longer one, at most 1 min
    Restarts         the part: on each recorded exit, a timer that relaunches;
                     at service start, the ``always`` and ``unless-stopped``
                     containers that are not running; a user's stop or kill
                     recorded so it is not undone

What a restart needs to survive a service restart is in the container's
record (``results``): ``restart_count`` (Docker's ``RestartCount``),
``restart_delay`` (the back-off reached) and ``stopped_by_user``.  The order
is the runtime's: the exit is recorded and acknowledged first
(runtime/exits.py calls ``on_exit`` after that), the count is written with
the record's return to ``created``, then the launcher is asked
(``Launches.relaunch``).  A restart pending when the service stops is not
lost: an exited container whose policy wants it running is started at the
next start (``resume``); ``on-failure`` ones too, within their count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from runtime.errors import RuntimeFailure
from runtime.records import EXITED, ContainerRecord, RecordStore

log = logging.getLogger("mydocker.restarts")

#: moby's restartmanager: backoffMultiplier 2, defaultTimeout 100 ms,
#: maxRestartTimeout 1 min, and a run of 10 s or more resets the back-off.
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0

COUNT, DELAY, STOPPED = "restart_count", "restart_delay", "stopped_by_user"


def restart_count(record: ContainerRecord) -> int:
    return int(record.results.get(COUNT) or 0)


def should_restart(record: ContainerRecord, at_start: bool = False) -> bool:
    """Whether ``record``'s policy starts it again after this exit.  A stop
    or kill by the user is never undone, but ``always`` brings the container
    back when the service starts (Docker: "restarted only when the daemon
    restarts"); ``unless-stopped`` does not."""
    policy = record.spec.restart_policy
    if record.status != EXITED or policy.name == "no":
        return False
    if record.results.get(STOPPED):
        return at_start and policy.name == "always"
    if policy.name == "on-failure":
        failed = record.exit_code != 0 or record.error is not None
        limit = policy.maximum_retry_count
        return failed and (limit == 0 or restart_count(record) < limit)
    return True


def _seconds_run(record: ContainerRecord) -> float | None:
    if not record.started_at or not record.finished_at:
        return None
    try:
        started = datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
        finished = datetime.fromisoformat(record.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (finished - started).total_seconds()


def next_delay(record: ContainerRecord) -> float:
    """The wait before this restart: the first is 100 ms, each one after a
    run shorter than ``RESET_AFTER`` twice the last, up to ``MAX_DELAY``."""
    last = record.results.get(DELAY)
    ran = _seconds_run(record)
    if not last or (ran is not None and ran >= RESET_AFTER):
        return FIRST_DELAY
    return min(float(last) * 2, MAX_DELAY)


class Restarts:
    """``relaunch`` starts an exited container again with extra results
    (``Launches.relaunch``); timers are daemon threads, cancelled by ``close``."""

    def __init__(
        self,
        records: RecordStore,
        relaunch: Callable[[str, dict[str, object]], ContainerRecord],
    ) -> None:
        self.records = records
        self._relaunch = relaunch
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        self.closing = False

    def on_exit(self, record: ContainerRecord) -> None:
        """After an exit is recorded and acknowledged: schedule the restart.
        On the launcher reader's thread: it never raises into it."""
        try:
            if not self.closing and should_restart(record):
                self._schedule(record, next_delay(record))
        except Exception:
            log.exception("scheduling the restart of %s failed", record.id)

    def _schedule(self, record: ContainerRecord, delay: float) -> None:
        timer = threading.Timer(delay, self._restart, (record.id, delay))
        timer.daemon = True
        timer.name = f"restart-{record.id[:12]}"
        with self._lock:
            if self.closing:
                return
            old = self._timers.pop(record.id, None)
            self._timers[record.id] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _restart(self, container_id: str, delay: float, at_start: bool = False) -> None:
        with self._lock:
            self._timers.pop(container_id, None)
            if self.closing:
                return
        record = self.records.get(container_id)
        # Removed, started by a client, or stopped by the user meanwhile.
        if record is None or not should_restart(record, at_start):
            return
        results: dict[str, object] = {COUNT: restart_count(record) + 1, DELAY: delay}
        try:
            self._relaunch(container_id, results)
        except RuntimeFailure as err:
            log.warning("restarting %s failed: %s", container_id, err)

    def pending(self, container_id: str) -> bool:
        """Whether its restart is waiting for its timer: Docker's
        ``restarting`` state, which a removal without force refuses."""
        with self._lock:
            return container_id in self._timers

    def restarting(self, record: ContainerRecord) -> bool:
        """Docker's ``restarting``: exited, and its policy starts it again
        (the timer may not be set yet: the exit is acknowledged before
        ``on_exit`` runs)."""
        return record.status == EXITED and (self.pending(record.id) or should_restart(record))

    def cancel(self, container_id: str) -> None:
        """Drop a pending restart (a forced removal)."""
        with self._lock:
            timer = self._timers.pop(container_id, None)
        if timer is not None:
            timer.cancel()

    def user_stopped(self, record: ContainerRecord) -> None:
        """A stop or kill asked by a client: recorded before the signal is
        sent, so the exit it causes is not restarted; a pending restart is
        cancelled.  A later start or relaunch clears it."""
        self.cancel(record.id)
        if record.spec.restart_policy.name != "no":
            self.records.update(record.id, results={STOPPED: True})

    def user_stopped_ids(self, ids: Sequence[str]) -> None:
        """``user_stopped`` after a bulk kill, for the ids it signalled: a
        restart it raced is cancelled (its timer waits at least 100 ms)."""
        for container_id in ids:
            record = self.records.get(container_id)
            if record is not None and record.spec.restart_policy.name != "no":
                self.user_stopped(record)

    def resume(self, records: Sequence[ContainerRecord]) -> None:
        """At service start: the exited containers whose policy wants them
        running (``always`` even after a user's stop), each on a timer of its
        own so the start does not wait for them."""
        for record in records:
            if should_restart(record, at_start=True):
                timer = threading.Timer(0, self._restart, (record.id, FIRST_DELAY, True))
                timer.daemon = True
                with self._lock:
                    self._timers[record.id] = timer
                timer.start()

    def close(self) -> None:
        with self._lock:
            self.closing = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
