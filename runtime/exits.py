"""``Exits``: exit statuses recorded, and whoever waits for them woken.

    on_event         the launcher's exit event (its reader thread): record it,
                     then ack it, then wake the waiters; a container with
                     ``auto_remove`` is then removed on a thread of its own
    mark_lost, fail  end a record without a status (a lost launcher, a failed launch)
    exit_future, exec_exit_future, removal_future, watch
                     futures for an exit or a removal, dropped at once if cancelled
    forget           a removed container's last record, kept for late callers (``current``)
    close            fail every pending future: the service is shutting down

``lock`` guards "is it exited?" against "it exited", so no waiter misses its
wake-up.  An exit that cannot be recorded is not acknowledged, so the launcher
keeps it: it is tried again (into the reserve's space at once if the disk is
full, else after ``RECORD_RETRY_SECONDS``) and never lost (docs/reliability.md).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from runtime.errors import NotFound, RuntimeFailure, StorageFull, Unavailable
from runtime.events import EventLog
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.records import EXITED, ContainerRecord, ExecRecord, RecordStore
from runtime.reports import container_event, die_attributes, exec_event
from runtime.reserve import Reserve
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.runtime")

STATUS_LOST = "exit status lost: the launcher that ran this container is gone"
#: Retrying to record an exit that could not be written (full disk, locked db).
RECORD_RETRY_SECONDS = 1.0
#: How many removed containers' last records are kept (``Exits.forget``).
REMEMBER_REMOVED = 256

R = TypeVar("R", ContainerRecord, ExecRecord)


class Exits:
    def __init__(
        self,
        records: RecordStore,
        launcher: LauncherClient,
        reserve: Reserve,
        remove: Callable[[str], None],
        events: EventLog,
    ) -> None:
        """``remove`` removes a container by id (``auto_remove``); ``events``
        gets a ``die`` (``exec_die``) for each exit recorded."""
        self.records = records
        self.events = events
        self.launcher = launcher
        self._reserve = reserve
        self._remove = remove
        # Guards "is it exited?" against "it exited" so no waiter misses a wake-up.
        self.lock = threading.Lock()
        self._exit_waiters: dict[str, list[Future[ContainerRecord]]] = {}
        self._removal_waiters: dict[str, list[Future[ContainerRecord]]] = {}
        # The last records of recently removed containers: an auto-removed
        # container can be gone before the create or start that ran it has
        # answered, and that answer (and a late waiter) still needs its record.
        self._removed: OrderedDict[str, ContainerRecord] = OrderedDict()
        self._exec_waiters: dict[str, list[Future[ExecRecord]]] = {}
        self.closing = False
        #: Called with each container record once it is exited (its network's
        #: ports and names go: runtime/networks.py); must not raise.
        self.on_ended: Callable[[ContainerRecord], None] | None = None
        #: Called with each exit once recorded and acked (runtime/restarts.py).
        self.on_exit: Callable[[ContainerRecord], None] | None = None

    def _ended(self, record: ContainerRecord | None) -> None:
        if record is not None and self.on_ended is not None:
            try:
                self.on_ended(record)
            except Exception:
                log.exception("cleaning up after %s failed", record.id)

    def close(self) -> None:
        self.closing = True
        with self.lock:
            waiters: list[list[Future[Any]]] = [
                *self._exit_waiters.values(),
                *self._removal_waiters.values(),
                *self._exec_waiters.values(),
            ]
            self._exit_waiters, self._removal_waiters, self._exec_waiters = {}, {}, {}
        for futures in waiters:
            for future in futures:
                if not future.done():
                    future.set_exception(Unavailable("the service is shutting down"))

    # -- events from the launcher (reader thread) -------------------------
    def on_event(self, event: protocol.ExitEvent) -> None:
        if event.kind == protocol.EntryKind.EXEC:
            self._on_exec_exit(event)
            return
        container_id = event.id
        results = event.exit.results.as_dict() if event.exit.results is not None else {}
        record: ContainerRecord | None = None

        def exited(current: ContainerRecord) -> dict[str, Any]:
            return {
                "status": EXITED,
                "exit_code": event.exit.exit_code,
                "signal": event.exit.signal,
                "finished_at": event.exit.finished_at,
                "results": results,  # merged into the record's (RecordStore.amend)
                # A lost-status error set meanwhile is wrong now.
                **_clear_lost(current),
            }

        try:
            with self.lock:
                # The record as last written, or one read in the write's
                # transaction: on a wait=true launch's way to its answer
                # (docs/performance.md, "Records as written").
                record = self.records.amend(container_id, exited)
        except RuntimeFailure as err:
            # Not recorded, so not acknowledged: the launcher keeps the status.
            if isinstance(err, StorageFull) and self._reserve.release():
                self.on_event(event)  # at once, into the space set aside
                return
            # Try again soon (a full disk or a locked database passes).
            if not self.closing:
                log.error("recording the exit of %s failed: %s; retrying", container_id, err)
                timer = threading.Timer(RECORD_RETRY_SECONDS, self.on_event, (event,))
                timer.daemon = True
                timer.start()
            return
        if record is not None:
            self._report_die(record)
            self._ended(record)
        # Recorded: acknowledge first, then wake the waiters, so that a waiter
        # that closes the runtime at once (a clean shutdown) has not cut the
        # ack off, which would keep the launcher holding the exit (and alive).
        self._ack_then_wake(container_id, record, self._exit_waiters)
        if record is not None and self.on_exit is not None:
            self.on_exit(record)
        # A container stopped by a restart (runtime/lifecycle.py) is not removed.
        if record is not None and record.spec.auto_remove and not record.results.get("restarting"):
            # Not on this (the launcher reader's) thread: removing files may
            # take a while, and later events must not wait for it.
            threading.Thread(
                target=self._auto_remove, args=(container_id,), name="auto-remove", daemon=True
            ).start()

    def _report_die(self, record: ContainerRecord) -> None:
        """``die``, once the exit is recorded and before any waiter wakes: a
        client that waited and then reads the events finds it."""
        self.events.publish(container_event("die", record, **die_attributes(record)))

    def _auto_remove(self, container_id: str) -> None:
        try:
            self._remove(container_id)
        except NotFound:
            pass  # removed by a client meanwhile
        except RuntimeFailure:
            log.exception("auto-removing container %s failed", container_id)

    def _on_exec_exit(self, event: protocol.ExitEvent) -> None:
        record: ExecRecord | None = None
        with self.lock:
            if self.records.get_exec(event.id) is not None:
                record = self.records.update_exec(
                    event.id,
                    status=EXITED,
                    exit_code=event.exit.exit_code,
                    signal=event.exit.signal,
                    finished_at=event.exit.finished_at,
                )
        if record is not None:
            container = self.records.get(record.container_id)
            self.events.publish(
                exec_event(
                    "exec_die",
                    record,
                    container.name if container else None,
                    exit_code=record.exit_code,
                    signal=record.signal,
                )
            )
        # Ack even for an exec whose container was removed meanwhile, or the
        # launcher would keep the entry (and itself) forever; before waking
        # the waiters, as for containers (on_event).
        self._ack_then_wake(event.id, record, self._exec_waiters)

    def _ack_then_wake(
        self, target_id: str, record: R | None, registry: dict[str, list[Future[R]]]
    ) -> None:
        try:
            self.launcher.notify(protocol.Ack(target_id))
        finally:
            if record is not None:
                with self.lock:
                    _wake_locked(registry, record)

    # -- records ended without a status ------------------------------------
    def mark_lost(self, container_id: str, error: str = STATUS_LOST) -> None:
        with self.lock:
            record = self.records.update(
                container_id,
                status=EXITED,
                exit_code=None,
                signal=None,
                error=error,
                finished_at=now_rfc3339(),
            )
            self._report_die(record)
            _wake_locked(self._exit_waiters, record)
        self._ended(record)

    def mark_exec_lost(self, exec_id: str) -> None:
        with self.lock:
            record = self.records.update_exec(
                exec_id, status=EXITED, error=STATUS_LOST, finished_at=now_rfc3339()
            )
            self.events.publish(exec_event("exec_die", record, None, error=STATUS_LOST))
            _wake_locked(self._exec_waiters, record)

    def fail(self, container_id: str, error: str) -> None:
        """End a container that never ran, saying why (a failed launch)."""
        record = self.records.get(container_id)
        if record is not None and record.status != EXITED:
            ended = self.records.update(
                container_id, status=EXITED, error=error, finished_at=now_rfc3339()
            )
            self._report_die(ended)
            with self.lock:
                _wake_locked(self._exit_waiters, ended)
            self._ended(ended)

    # -- removal -------------------------------------------------------------
    def forget(
        self, container_id: str, ref: str
    ) -> tuple[ContainerRecord, list[Future[ContainerRecord]]]:
        """Delete a container's record, keeping its last one for late callers;
        returns it and the removal waiters to give it to."""
        with self.lock:
            final = self.records.get(container_id)
            if final is None:
                raise NotFound("container", ref)
            self.records.delete(container_id)
            # Removal ends the waits for a next exit that will never come.
            waiters = self._removal_waiters.pop(container_id, [])
            waiters += self._exit_waiters.pop(container_id, [])
            self._removed[container_id] = final
            while len(self._removed) > REMEMBER_REMOVED:
                self._removed.popitem(last=False)
        return final, waiters

    def current(self, container_id: str) -> ContainerRecord:
        """The record by full id, or the last one of a container removed since."""
        record = self.records.get(container_id)
        if record is not None:
            return record
        with self.lock:
            removed = self._removed.get(container_id)
        if removed is None:
            raise NotFound("container", container_id)
        return removed

    # -- futures -------------------------------------------------------------
    def removal_future(self, ref: str) -> Future[ContainerRecord]:
        """A future that completes with the last record once the container is removed."""
        future: Future[ContainerRecord] = Future()
        with self.lock:
            removed = self._removed.get(ref)
            if removed is not None:  # by full id only: names are reused
                future.set_result(removed)
                return future
            record = self.records.resolve(ref)
            self._removal_waiters.setdefault(record.id, []).append(future)
        return future

    def exit_future(self, ref: str) -> Future[ContainerRecord]:
        """A future that completes with the record once the container has exited."""
        with self.lock:
            removed = self._removed.get(ref)
            if removed is not None:  # auto-removed already (by full id only)
                return _done(removed)
            return self._pending(self.records.resolve(ref), self._exit_waiters)

    def watch(self, record: ContainerRecord) -> Future[ContainerRecord]:
        """``exit_future`` of a record in hand (one just inserted): no read."""
        with self.lock:
            return self._pending(record, self._exit_waiters)

    def next_exit_future(self, ref: str) -> Future[ContainerRecord]:
        """A future that completes at the container's next exit, even if it
        has exited now (it may be started again), or at its removal."""
        with self.lock:
            removed = self._removed.get(ref)
            if removed is not None:
                return _done(removed)
            record = self.records.resolve(ref)
            if self.closing:
                raise Unavailable("the service is shutting down")
            future: Future[ContainerRecord] = Future()
            self._exit_waiters.setdefault(record.id, []).append(future)
            self._forget_if_cancelled(self._exit_waiters, record.id, future)
            return future

    def exec_exit_future(self, ref: str) -> Future[ExecRecord]:
        """A future that completes with the exec's record once it has exited."""
        with self.lock:
            return self._pending(self.records.resolve_exec(ref), self._exec_waiters)

    def _pending(self, record: R, registry: dict[str, list[Future[R]]]) -> Future[R]:
        """Done at once if ``record`` has exited, else a waiter in ``registry``
        (the caller holds ``lock``)."""
        if record.status == EXITED:
            return _done(record)
        if self.closing:
            raise Unavailable("the service is shutting down")
        future: Future[R] = Future()
        registry.setdefault(record.id, []).append(future)
        # Safe under the lock: a future no one else holds yet is not done,
        # so add_done_callback does not run ``forget`` (which takes it) now.
        self._forget_if_cancelled(registry, record.id, future)
        return future

    def _forget_if_cancelled(
        self, registry: dict[str, list[Future[R]]], key: str, future: Future[R]
    ) -> None:
        """Drop a waiter that gave up (its client went away) at once, so that
        abandoned waits on a long-running container do not pile up."""

        def forget(done: Future[R]) -> None:
            if done.cancelled():
                with self.lock:
                    waiters = registry.get(key, [])
                    if done in waiters:
                        waiters.remove(done)
                    if not waiters:
                        registry.pop(key, None)

        future.add_done_callback(forget)

    def waiter_count(self) -> int:
        """How many exit futures are pending (tests: none may leak)."""
        with self.lock:
            return sum(len(w) for w in self._exit_waiters.values())


def _done(record: R) -> Future[R]:
    future: Future[R] = Future()
    future.set_result(record)
    return future


def _wake_locked(registry: dict[str, list[Future[R]]], record: R) -> None:
    for future in registry.pop(record.id, []):
        if not future.done():
            future.set_result(record)


def _clear_lost(current: ContainerRecord) -> dict[str, Any]:
    """The change that drops a lost-status error from ``current``, the
    record as ``on_event`` reads it (in its write's transaction, under
    ``Exits.lock``)."""
    if current.error and current.error.startswith((STATUS_LOST, "launch failed: the launcher")):
        return {"error": None}
    return {}
