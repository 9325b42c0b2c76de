"""``ExecVerbs``: the ``Runtime`` facade's exec methods (a base class, as
``files.FileVerbs``): create, start, wait for and read a command run in a
running container, handed to ``Launches`` (record, then launch), ``Exits``
(the exit and its waiters) and ``Output`` (its logs)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from runtime.errors import InvalidState, NotFound
from runtime.exits import Exits
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.launches import Launches
from runtime.layout import LOG_STREAMS
from runtime.lifecycle import Lifecycle
from runtime.output import Output
from runtime.records import ContainerRecord, ExecRecord, RecordStore
from runtime.spec import ExecRequest


class ExecVerbs:
    launches: Launches
    lifecycle: Lifecycle
    records: RecordStore
    launcher: LauncherClient
    exits: Exits
    output: Output

    def get(self, ref: str) -> ContainerRecord:
        raise NotImplementedError  # the facade's

    def exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        """Start ``request.spec`` in a running container; answers once it has
        exec'd (or failed to: then it is ``exited`` with 126/127 and ``error``)."""
        record = self.create_exec(ref, request)
        return self.launches.start_exec(record.id, request.tty_size)

    def create_exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        """Record ``request.spec`` as an exec of a running container, not
        started (Docker's ``exec create``); the record outlives a restart.
        ``request.tty_size`` is not kept: ``start_exec`` takes its own."""
        container = self.launches.running(ref)
        self.lifecycle.refuse_if_paused(container.id)
        return self.launches.record_exec(container, request.spec)

    def check_exec_start(self, ref: str) -> ExecRecord:
        """The created exec, if ``start_exec`` would start it now (``NotFound``,
        ``InvalidState`` otherwise): for a caller that must answer first."""
        return self.launches.startable_exec(ref)

    def start_exec(self, ref: str, tty_size: tuple[int, int] | None = None) -> ExecRecord:
        """Start a created exec, once (``InvalidState`` after); answers as ``exec``."""
        return self.launches.start_exec(ref, tty_size)

    def get_exec(self, ref: str) -> ExecRecord:
        return self.records.resolve_exec(ref)

    def list_execs(self, ref: str) -> builtins.list[ExecRecord]:
        """The execs of a container, oldest first."""
        return self.records.list_execs(container_id=self.get(ref).id)

    def kill_exec(self, ref: str, signal: int) -> None:
        """Signal a running exec (a health check past its timeout)."""
        record = self.get_exec(ref)
        try:
            self.launcher.request(protocol.Kill(record.id, signal))
        except (NotFound, InvalidState):
            pass  # it ended meanwhile

    def exec_exit_future(self, ref: str) -> Future[ExecRecord]:
        return self.exits.exec_exit_future(ref)

    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord:
        try:
            return self.exec_exit_future(ref).result(timeout)
        except FutureTimeout:
            return self.get_exec(ref)

    def exec_logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        """An exec's output, as ``logs``."""
        target = self.output.target("exec", ref)
        return self.output.read(target, stream, tail, follow, timestamps, since, until)

    def exec_log_chunks(
        self, ref: str, streams: Sequence[str] = LOG_STREAMS
    ) -> Iterator[tuple[str, bytes]]:
        """An exec's output from its first byte, followed until it exits, as
        ``(stream name, chunk)`` with heartbeats (``log_chunks``)."""
        target = self.output.target("exec", ref)
        return self.output.chunks(target, streams, None, True, False, True)
