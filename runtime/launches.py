"""``Launches``: containers and execs recorded, then handed to the launcher.

    create           admit, make the container's dirs (a spare made ahead:
                     sparedirs.py), insert its record (created), then ask
                     the launcher to clone it and wait
    begin            the same without waiting: a ``Launch`` whose futures
                     the launcher client's reader thread completes (an event
                     loop awaits them, app/launching.py)
    start_container  release a created container (the sync pipe's go byte);
                     an exited one is relaunched
    relaunch         an exited container started again, same id and layer
    record_exec      an exec record (created), not started (Docker's exec create)
    start_exec       a created exec handed to the launcher (once)
    settle           the answer: an exec failure is only final once exited
    (runtime/asking.py: the launcher asked, its answer recorded, ``Launch``)

The record is written before the launcher is asked for anything (record,
then launch), and the launcher's reply is recorded on its reader thread
before any exit event of the same container, so a record never goes from
``exited`` back to ``running`` (docs/reliability.md).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from runtime.admission import Admission
from runtime.asking import Asker, Launch
from runtime.errors import InvalidState, NotModified, RuntimeFailure, StorageFull, Unavailable
from runtime.events import EventLog
from runtime.exits import Exits
from runtime.images import ImageStore
from runtime.launcher import protocol
from runtime.launcher.client import REQUEST_TIMEOUT, LauncherClient
from runtime.launchtrace import LaunchObserver
from runtime.layout import Layout
from runtime.meters import Meter, setup_step
from runtime.network.nftables import NftError
from runtime.networks import Networks
from runtime.planning import make_root_dirs
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, ExecRecord, RecordStore
from runtime.reports import container_event, exec_event
from runtime.sparedirs import SpareDirs
from runtime.spec import ContainerSpec, ExecSpec, to_dict
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.runtime")

#: How long an exec failure may take to show up as an exit.
EXEC_FAILURE_WAIT = 10.0


#: What ``Launches.create`` and ``begin`` take: id, spec, name, start, tty size.
Planned = tuple[str, ContainerSpec, str | None, bool, tuple[int, int] | None]


def new_container_id() -> str:
    """64 hex digits from the OS's cryptographic source (random(7)).

    The tutorial seeded rand() with the time, so two containers started in
    the same second got the same id."""
    return secrets.token_hex(32)


class Launches:
    def __init__(
        self,
        layout: Layout,
        records: RecordStore,
        images: ImageStore,
        launcher: LauncherClient,
        admission: Admission,
        exits: Exits,
        events: EventLog,
        meter: Meter,
        *,
        on_launch: LaunchObserver | None = None,
        networks: Networks | None = None,
    ) -> None:
        self.layout = layout
        self._networks = networks
        self.records = records
        self.images = images
        self.launcher = launcher
        self._admission = admission
        self._exits = exits
        self._events = events
        self._meter = meter
        self._asker = Asker(layout, records, launcher, exits, meter, self._report_start, on_launch)
        self._spares = SpareDirs(layout.spares)
        # The execs being started: "created" until the launcher answers, so
        # the record alone cannot refuse a second start meanwhile.
        self._starting: set[str] = set()
        self._starting_lock = threading.Lock()

    def close(self) -> None:
        """The spare dirs' filler thread ended (runtime/sparedirs.py)."""
        self._spares.close()

    # -- containers ----------------------------------------------------------
    def create(
        self,
        container_id: str,
        spec: ContainerSpec,
        name: str | None,
        start: bool,
        tty_size: tuple[int, int] | None,
    ) -> ContainerRecord:
        """Record and launch a container whose spec is planned; answers once
        the launcher has."""
        self.answer(self.begin(container_id, spec, name, start, tty_size, watch=False))
        return self.settle(container_id)

    def begin(
        self,
        container_id: str,
        spec: ContainerSpec,
        name: str | None,
        start: bool,
        tty_size: tuple[int, int] | None,
        *,
        watch: bool = True,
    ) -> Launch:
        """Record a container and ask the launcher for it, without waiting:
        the gate is held shared until the answer is recorded, and the
        ``Launch``'s futures say the rest (``exited`` with ``watch``)."""
        self._admission.check_space()
        gate = self._admission.gate
        gate.enter_shared()
        exited: Future[ContainerRecord] | None = None
        try:
            with self._admission.lock:
                self._admission.admit()
                # Not deleted meanwhile (delete_image holds the lock).
                self.images.get(spec.image_id or spec.image)
                if self._networks is not None:  # address and ports: in the record, before launch
                    spec = self._networks.attach(container_id, spec)
                record = ContainerRecord(
                    id=container_id,
                    name=name or container_id,
                    status=CREATED,
                    spec=spec,
                    created_at=now_rfc3339(),
                )
                # One walk of the spec for the record and the launcher's request.
                wire = to_dict(spec)
                self._make_and_insert(record, spec, wire)
            self._events.publish(container_event("create", record))
            self._connect(record)
            # Watched before it is asked for: no exit can come earlier.
            exited = self._exits.watch(record) if watch else None
            launch = self._asker.ask(
                container_id, spec, start, tty_size, exited, gate.leave_shared, wire
            )
        except BaseException:
            if exited is not None:
                exited.cancel()
            gate.leave_shared()
            if self._networks is not None:  # an address taken for a record never written
                self._networks.forget(container_id)
            raise
        self._spares.after_create()  # the next creates' dirs, once creates pause
        return launch

    def _connect(self, record: ContainerRecord) -> None:
        """The network's side of the host (its /etc files, published ports,
        names), after the record and before the launch."""
        if self._networks is None:
            return
        try:
            self._networks.started(record)
        except (RuntimeFailure, OSError, NftError) as err:
            self._exits.fail(record.id, f"network: {err}")
            raise RuntimeFailure(f"network: {err}") from err

    def _make_and_insert(
        self, record: ContainerRecord, spec: ContainerSpec, wire: dict[str, Any]
    ) -> None:
        """The container's dir (a spare made ahead, runtime/sparedirs.py, or
        a new one) and root dirs, then its record; nothing left on failure."""
        cdir = self.layout.container_dir(record.id)
        try:
            if not self._spares.take(cdir):
                os.makedirs(cdir, mode=0o700)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(cdir, err.strerror or "no space") from err
            raise RuntimeFailure(f"creating the container's directory: {err}") from err
        try:
            make_root_dirs(spec.rootfs, spec.security.userns_host_id)
            self.records.insert(record, wire)
        except (RuntimeFailure, OSError):
            shutil.rmtree(cdir, ignore_errors=True)
            raise

    def _launch(
        self,
        container_id: str,
        spec: ContainerSpec,
        start: bool,
        tty_size: tuple[int, int] | None = None,
    ) -> None:
        """Ask the launcher and wait for its answer (the caller holds the gate)."""
        self.answer(self._asker.ask(container_id, spec, start, tty_size, None, None))

    def answer(self, launch: Launch) -> ContainerRecord:
        """Wait on this thread for a launch's answer (``REQUEST_TIMEOUT``)."""
        try:
            return launch.answered.result(REQUEST_TIMEOUT)
        except FutureTimeout as err:
            launch.abandon()
            raise Unavailable(
                f"the launcher did not answer the launch of {launch.container_id} in time"
            ) from err

    def _report_start(self, record: ContainerRecord, exec_error: protocol.ExecError | None) -> None:
        """``start`` once the command runs; a failed setup or exec is
        counted by its step, and its ``die`` follows (127, 126, 125)."""
        if exec_error:
            self._meter.launch_failed(setup_step(exec_error.step))
        elif record.status == RUNNING:
            self._events.publish(container_event("start", record))

    def settle(self, container_id: str) -> ContainerRecord:
        """The record after launch; an exec failure is only final once exited."""
        record = self._exits.current(container_id)
        if record.error and record.status != EXITED:
            try:
                return self._exits.exit_future(container_id).result(EXEC_FAILURE_WAIT)
            except FutureTimeout:
                pass
        return self._exits.current(container_id)

    def start_container(self, ref: str) -> ContainerRecord:
        """Release a created container (the sync pipe's go byte)."""
        record = self.records.resolve(ref)
        if record.status == RUNNING:
            raise NotModified(f"container {record.id} is already running")
        if record.status == EXITED:
            return self.relaunch(record.id)

        def record_start(reply: protocol.Launched) -> None:
            exec_error = reply.exec_error
            started = self.records.update(
                record.id,
                status=RUNNING,
                started_at=reply.started_at,
                error=exec_error.message if exec_error else None,
            )
            self._report_start(started, exec_error)

        with self._admission.gate.shared():
            requested_ns = time.time_ns()
            reply = self.launcher.request(protocol.Start(record.id), on_reply=record_start)
        self._asker.observe(record.id, record.spec.image, "start", True, requested_ns, reply)
        return self.settle(record.id)

    def relaunch(self, ref: str, results: Mapping[str, Any] | None = None) -> ContainerRecord:
        """Start an exited container again: the same id, spec and dirs, so
        its writable layer is kept and its logs go on (opened to append).
        The record goes back to ``created`` before the launcher is asked
        (record, then launch), its last run's ending cleared; ``results``
        are written with it (a restart policy's count, runtime/restarts.py)."""
        record = self.records.resolve(ref)
        if record.status != EXITED:
            raise NotModified(f"container {record.id} is already {record.status}")
        cleared = {key: None for key in record.results}
        with self._admission.gate.shared():
            with self._admission.lock, self._readdressing():
                self._admission.admit()
                self.images.get(record.spec.image)
                # Its addresses were free for others while it was exited: a
                # static one taken meanwhile refuses the start (409) here,
                # before anything is changed.
                spec = self._networks.readdress(record) if self._networks else record.spec
                record = self.records.update(
                    record.id,
                    status=CREATED,
                    pid=None,
                    pid_start_time=None,
                    exit_code=None,
                    signal=None,
                    error=None,
                    finished_at=None,
                    results={**cleared, **(results or {})},
                    **({"spec": spec} if spec != record.spec else {}),
                )
            self._connect(record)  # its ports and names went at its exit
            self._launch(record.id, record.spec, True)
        return self.settle(record.id)

    def _readdressing(self) -> AbstractContextManager[Any]:
        """The networks' lock, so that no connect takes an address between
        the readdress and the record (``nullcontext`` without networks)."""
        return self._networks.lock if self._networks is not None else nullcontext()

    # -- execs ---------------------------------------------------------------
    def running(self, ref: str) -> ContainerRecord:
        """The container an exec goes into (404, or 409 when it is not running)."""
        container = self.records.resolve(ref)
        if container.status != RUNNING:
            raise InvalidState(f"container {container.id} is not running")
        return container

    def record_exec(self, container: ContainerRecord, spec: ExecSpec) -> ExecRecord:
        """An exec record (created) and its dir, not yet started (Docker's
        ``exec create``; ``start_exec`` starts it, even after a restart)."""
        record = ExecRecord(
            id=new_container_id(),
            container_id=container.id,
            status=CREATED,
            spec=spec,
            created_at=now_rfc3339(),
        )
        os.makedirs(self.layout.exec_dir(container.id, record.id), mode=0o700)
        self.records.insert_exec(record)
        self._events.publish(exec_event("exec_create", record, container.name))
        return record

    def startable_exec(self, ref: str) -> ExecRecord:
        """The created exec ``ref`` names, if it may start now: ``NotFound``,
        or ``InvalidState`` once started or when its container does not run."""
        record = self.records.resolve_exec(ref)
        if record.status != CREATED or record.id in self._starting:
            raise InvalidState(f"exec {record.id} has already started")
        self.running(record.container_id)
        return record

    def start_exec(self, ref: str, tty_size: tuple[int, int] | None) -> ExecRecord:
        """Start a created exec; answers once it has exec'd (or failed to:
        then it is ``exited`` with 126/127 and ``error``).  A second start,
        even one racing this, is an ``InvalidState``."""
        with self._starting_lock:
            record = self.startable_exec(ref)
            self._starting.add(record.id)
        try:
            self._launch_exec(record, tty_size)
        finally:
            with self._starting_lock:
                self._starting.discard(record.id)
        current = self.records.resolve_exec(record.id)
        if current.error and current.status != EXITED:
            try:
                return self._exits.exec_exit_future(record.id).result(EXEC_FAILURE_WAIT)
            except FutureTimeout:
                pass
        return self.records.resolve_exec(record.id)

    def _launch_exec(self, record: ExecRecord, tty_size: tuple[int, int] | None) -> None:
        container = self.records.get(record.container_id)
        container_name = container.name if container else None

        def record_launch(reply: protocol.Launched) -> None:
            exec_error = reply.exec_error
            started = self.records.update_exec(
                record.id,
                status=RUNNING,
                pid=reply.pid,
                started_at=reply.started_at,
                error=exec_error.message if exec_error else None,
            )
            if not exec_error:
                self._events.publish(exec_event("exec_start", started, container_name))

        message = protocol.Exec(
            id=record.id,
            container=record.container_id,
            spec=to_dict(record.spec),
            stdout=self.layout.exec_log_path(record, "stdout"),
            stderr=self.layout.exec_log_path(record, "stderr"),
            tty_size=tty_size or None,
        )
        try:
            self.launcher.request(message, on_reply=record_launch)
        except RuntimeFailure:
            # Nothing ran: forget the exec, as if it had never been asked for.
            self.records.delete_exec(record.id)
            shutil.rmtree(self.layout.exec_dir(record.container_id, record.id), ignore_errors=True)
            raise
