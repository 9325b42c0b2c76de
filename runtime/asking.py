"""A container's ``create`` asked of the launcher, its answer recorded.

    Launch           a create asked and not yet answered: its futures, for a
                     thread (``Launches.answer``) or an event loop
                     (``asyncio.wrap_future``, app/launching.py) to wait on
    Asker.ask        send the launcher's ``create``; on the launcher client's
                     reader thread the reply is recorded (``running``, the
                     pid), then the gate left, the meter and ``on_launch`` run
                     in the asker's context, and ``Launch.answered`` completes
    Asker.observe    a launcher round trip -> ``on_launch`` (runtime/launchtrace.py)

``Launches`` (runtime/launches.py) records the container first and holds the
admission gate; this module only asks and records the answer, on the reader
thread, before any exit event of the same container (docs/reliability.md).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from runtime.errors import RuntimeFailure, Unavailable
from runtime.exits import Exits
from runtime.launcher import protocol
from runtime.launcher.client import Disconnected, LauncherClient
from runtime.launchtrace import LaunchObserver, LaunchTrace
from runtime.layout import Layout
from runtime.meters import Meter
from runtime.records import CREATED, RUNNING, ContainerRecord, RecordStore
from runtime.spec import ContainerSpec, to_dict

log = logging.getLogger("mydocker.runtime")

#: Reports a container's start (or its failed setup) once recorded.
StartReporter = Callable[[ContainerRecord, "protocol.ExecError | None"], None]


@dataclass(frozen=True)
class Launch:
    """A container recorded and asked of the launcher, not yet answered.

    ``answered`` completes with the record once the launcher's reply is in
    it (on the launcher client's reader thread, after the gate is left and
    ``on_launch`` called), or fails with the runtime's exception;
    ``exited``, when watched, completes at the container's exit.  A thread
    waits with ``Launches.answer``; an event loop awaits both through
    ``asyncio.wrap_future`` and holds no thread meanwhile (app/launching.py).
    """

    container_id: str
    answered: Future[ContainerRecord]
    exited: Future[ContainerRecord] | None
    sent: Future[protocol.Launched]

    def abandon(self) -> None:
        """Stop waiting: an unanswered request is forgotten (its late reply is
        dropped, and the reconcile after a reconnect finds the container),
        the exit waiter dropped."""
        self.sent.cancel()
        if self.exited is not None:
            self.exited.cancel()


def _complete(
    answered: Future[ContainerRecord],
    done: Future[protocol.Launched],
    launched: ContainerRecord | None,
    container_id: str,
) -> None:
    """The launch's answer from the launcher client's future."""
    try:
        if done.cancelled():
            answered.cancel()
            return
        error = done.exception()
        if isinstance(error, Disconnected):
            # The launcher (or our connection to it) went away mid-launch:
            # only the reconcile that follows knows whether it runs.
            failure = Unavailable(
                f"the launcher went away while launching container {container_id}; "
                f"GET /containers/{container_id} tells whether it runs"
            )
            failure.__cause__ = error
            answered.set_exception(failure)
        elif error is not None:
            answered.set_exception(error)
        else:
            assert launched is not None  # recorded by on_reply before the future completed
            answered.set_result(launched)
    except InvalidStateError:
        pass  # abandoned meanwhile: nobody waits for it


class _Answer:
    """What the reader thread learns of one launch, for ``settled`` after it."""

    def __init__(self, container_id: str, start: bool) -> None:
        self.container_id = container_id
        self.start = start
        self.replied_ns = 0
        self.record: ContainerRecord | None = None


class Asker:
    """Asks the launcher for containers whose records are in (``Launches``)."""

    def __init__(
        self,
        layout: Layout,
        records: RecordStore,
        launcher: LauncherClient,
        exits: Exits,
        meter: Meter,
        report_start: StartReporter,
        on_launch: LaunchObserver | None,
    ) -> None:
        self.layout = layout
        self.records = records
        self.launcher = launcher
        self._exits = exits
        self._meter = meter
        self._report_start = report_start
        self._on_launch = on_launch

    def ask(
        self,
        container_id: str,
        spec: ContainerSpec,
        start: bool,
        tty_size: tuple[int, int] | None,
        exited: Future[ContainerRecord] | None,
        leave: Callable[[], None] | None,
        wire: dict[str, Any] | None = None,
    ) -> Launch:
        """Send the launcher's ``create``; the reply is recorded on its reader
        thread (``_Answer.record``), then ``settled`` completes the ``Launch``
        and calls ``leave`` (the gate's, when the caller does not hold it)."""
        answer = _Answer(container_id, start)
        message = protocol.Create(
            id=container_id,
            spec=to_dict(spec) if wire is None else wire,
            start=start,
            stdout=self.layout.log_path(container_id, "stdout"),
            stderr=self.layout.log_path(container_id, "stderr"),
            tty_size=tty_size or None,
            pidfile=self.layout.pidfile_path(container_id),
        )
        # The meter and the observer run where the reply lands, in the
        # asker's context (the request's start and span: app/metrics.py,
        # app/tracing.py).
        context = contextvars.copy_context()
        requested_ns = time.time_ns()
        answered: Future[ContainerRecord] = Future()
        try:
            sent = self.launcher.submit(message, on_reply=lambda reply: self._record(answer, reply))
        except RuntimeFailure as err:
            self._launch_failed(container_id, err)
            raise

        def replied(reply: protocol.Launched) -> None:
            if answer.replied_ns and start:
                self._meter.launch_replied(answer.replied_ns)
            self.observe(container_id, spec.image, "create", start, requested_ns, reply)

        def settled(done: Future[protocol.Launched]) -> None:
            try:
                if not done.cancelled() and (error := done.exception()) is not None:
                    self._launch_failed(container_id, error)
                elif not done.cancelled():
                    context.run(replied, done.result())
            finally:
                if leave is not None:
                    leave()
                _complete(answered, done, answer.record, container_id)

        sent.add_done_callback(settled)
        return Launch(container_id, answered, exited, sent)

    def _record(self, answer: _Answer, reply: protocol.Launched) -> None:
        """The launcher's reply, on its reader thread, which records this
        container's exit only after: "start" is never logged after "die"."""
        exec_error = reply.exec_error
        if not exec_error:
            answer.replied_ns = time.monotonic_ns()  # the child exec'd: the launch is done
        answer.record = self.records.update(
            answer.container_id,
            status=RUNNING if answer.start else CREATED,
            pid=reply.pid,
            pid_start_time=reply.pid_start_time,
            started_at=reply.started_at,
            error=exec_error.message if exec_error else None,
        )
        self._report_start(answer.record, exec_error)

    def _launch_failed(self, container_id: str, error: BaseException) -> None:
        """A launch the launcher refused, or could not be asked for."""
        if isinstance(error, RuntimeFailure):
            self._meter.launch_failed("launcher")
        if isinstance(error, RuntimeFailure) and not isinstance(error, Disconnected):
            # Keep the record, and say why it never ran.  (Disconnected:
            # only the reconcile that follows knows whether it runs.)
            self._exits.fail(container_id, f"launch failed: {error}")

    def observe(
        self,
        container_id: str,
        image: str,
        op: str,
        started: bool,
        requested_ns: int,
        reply: protocol.Launched,
    ) -> None:
        """Hand a launcher round trip to ``on_launch``, in the launching
        request's context; it never fails the launch."""
        if self._on_launch is None:
            return
        error = reply.exec_error.message if reply.exec_error else None
        trace = LaunchTrace(
            container_id, image, op, started, requested_ns, time.time_ns(), reply.timeline, error
        )
        try:
            self._on_launch(trace)
        except Exception:
            log.exception("on_launch failed for %s", container_id)
