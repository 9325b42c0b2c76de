"""``Reconciler``: the records brought in step with the launcher's list.

    reconcile         at start-up, and after any lost connection: the launcher's
                      list is the truth (held entries, exits it kept)
    bury              a record no launcher holds: kill its orphan, keep no made-up status
    on_launcher_lost  the connection dropped: reconnect and reconcile on a thread of its own

A record the launcher holds gets its pid and state from it, and the exits it
kept are recorded; a record it does not hold belonged to a launcher that died:
its process, if still there, is killed (found by pid and start time,
``runtime/pids.py``) and the record ends with ``exit_code`` null and an
``error`` saying the status was lost; then the cleaners of
``runtime/leftovers.py`` remove what dead containers left.
"""

from __future__ import annotations

import logging
import threading
import time

from runtime import leftovers, pids
from runtime.errors import RuntimeFailure
from runtime.exits import STATUS_LOST, Exits
from runtime.gate import Gate
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.layout import Layout
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, RecordStore

log = logging.getLogger("mydocker.runtime")

LAUNCH_LOST = "launch lost: the launcher went away before this container was started"
ORPHAN_KILLED = "; its process, still running without a parent to report it, was killed"


class Reconciler:
    def __init__(
        self,
        layout: Layout,
        records: RecordStore,
        launcher: LauncherClient,
        gate: Gate,
        exits: Exits,
    ) -> None:
        self.layout = layout
        self.records = records
        self.launcher = launcher
        self._gate = gate
        self._exits = exits
        self.reconciles = 0  # how many reconciles completed (tests, logs)

    def reconcile(self) -> None:
        with self._gate.exclusive():
            held = {e.id: e for e in self.launcher.request(protocol.List()).containers}
            for record in self.records.list(status=RUNNING) + self.records.list(status=CREATED):
                entry = held.get(record.id)
                if entry is None:
                    self.bury(record)
                elif entry.exit is None:
                    with self._exits.lock:
                        current = self.records.get(record.id)
                        # An exit event may have been recorded since the list.
                        if current is not None and current.status != EXITED:
                            self.records.update(
                                record.id,
                                status=RUNNING if entry.state == RUNNING else CREATED,
                                pid=entry.pid,
                                pid_start_time=entry.pid_start_time,
                                started_at=entry.started_at or record.started_at,
                            )
            for exec_record in self.records.list_execs(status=RUNNING):
                if exec_record.id not in held:
                    self._exits.mark_exec_lost(exec_record.id)
            # A created exec the launcher does not hold may be one not started
            # yet (Docker's exec create): it waits while its container runs.
            for exec_record in self.records.list_execs(status=CREATED):
                container = self.records.get(exec_record.container_id)
                waiting = container is not None and container.status == RUNNING
                if exec_record.id not in held and not waiting:
                    self._exits.mark_exec_lost(exec_record.id)
            live = {i for i, e in held.items() if e.exit is None}
            leftovers.clean(self.layout.state_dir, live)
        for entry in held.values():
            if entry.exit is not None:
                self._exits.on_event(protocol.ExitEvent(entry.id, entry.kind, entry.exit))
        self.reconciles += 1

    def bury(self, record: ContainerRecord) -> None:
        """End a record whose launcher is gone: kill its orphan, keep no made-up status.

        The pid file (written by the launcher before the go byte) knows the
        process even when the record does not yet; it goes once the process
        is killed (an older launcher's is in the container's dir)."""
        path = self.layout.pidfile_path(record.id)
        found = pids.read_pidfile(path) or pids.read_pidfile(
            self.layout.old_pidfile_path(record.id)
        )
        pid, start_time = found if found else (record.pid, record.pid_start_time)
        killed = pids.kill_orphan(pid, start_time)
        pids.remove_pidfile(path)
        if killed:
            log.warning("killed orphaned container %s (pid %s)", record.id, pid)
        if pid is None:
            error = LAUNCH_LOST
        else:
            error = STATUS_LOST + (ORPHAN_KILLED if killed else "")
        self._exits.mark_lost(record.id, error)

    def on_launcher_lost(self) -> None:
        """The connection dropped: reconnect and reconcile, on a thread of its own.

        A launcher that is still alive still holds every container and every
        unacknowledged exit, so nothing is marked lost; only when a new
        launcher had to be started are the old one's containers buried."""
        if self._exits.closing:
            return
        log.warning("lost the connection to the launcher; reconnecting")
        threading.Thread(target=self._recover, name="launcher-recovery", daemon=True).start()

    def _recover(self) -> None:
        delay = 0.1
        while not self._exits.closing:
            try:
                self.launcher.connect()
                self.reconcile()
            except RuntimeFailure as err:
                log.error("reconnecting to the launcher failed: %s; retrying", err)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                log.info("reconnected to the launcher (pid %s)", self.launcher.launcher_pid)
                return
