"""Health checks: a container's ``Options.healthcheck`` run as an exec, now and then.

    HealthStatus   starting / healthy / unhealthy, as Docker names them
    Probe          one run: start, end, exit code, the first 4 KiB of output
    Health         a container's status, failing streak and last five probes
    HealthMonitor  one thread that finds running containers with a check due
                   and runs each check on a small pool; ``get`` answers
                   inspect, and a change of status is a ``health_status`` event

Docker's rules (its HEALTHCHECK reference): the first check comes one
interval after the start (``start_interval`` while in the start period); a
check fails when it exits non-zero or outlasts its timeout (then it is
killed); ``retries`` failures in a row make the container unhealthy, one
success healthy; failures inside the start period do not count.

The status lives in memory: after a restart of the service a container is
``starting`` again until its next check (Docker keeps it in its state file).
Each check is an ordinary exec, recorded as one.
"""

from __future__ import annotations

import enum
import logging
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import RuntimeFailure
from runtime.events import EventLog
from runtime.options import Healthcheck
from runtime.records import RUNNING, ContainerRecord, ExecRecord
from runtime.reports import container_event
from runtime.spec import ExecRequest, ExecSpec, Status
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.health")

#: Probes kept per container, and output bytes kept per probe (Docker's).
LOG_PROBES = 5
OUTPUT_BYTES = 4096
#: How often the monitor looks for a check that is due.
TICK_SECONDS = 0.1
#: Checks running at once, all containers together.
WORKERS = 4


class HealthStatus(enum.StrEnum):
    starting = "starting"
    healthy = "healthy"
    unhealthy = "unhealthy"


@dataclass(frozen=True)
class Probe:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass(frozen=True)
class Health:
    status: HealthStatus = HealthStatus.starting
    failing_streak: int = 0
    log: tuple[Probe, ...] = ()


class Checks(Protocol):
    """What the monitor needs of the runtime (the facade gives it)."""

    def list(self, status: str | None = None) -> list[ContainerRecord]: ...

    def exec(self, ref: str, request: ExecRequest) -> ExecRecord: ...

    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord: ...

    def exec_logs(self, ref: str, stream: str | None = None) -> Iterator[bytes]: ...

    def kill_exec(self, ref: str, signal: int) -> None: ...


@dataclass
class _Tracked:
    started_at: str
    started: float
    due: float
    health: Health
    running: Future[Probe] | None = None


class HealthMonitor:
    def __init__(self, checks: Checks, events: EventLog, tick: float = TICK_SECONDS) -> None:
        self._checks = checks
        self._events = events
        self._tick = tick
        # Reentrant: a check that is done before ``add_done_callback`` runs
        # its callback at once, in the scheduling thread, which holds it.
        self._lock = threading.RLock()
        self._tracked: dict[str, _Tracked] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="health")
        self._thread = threading.Thread(target=self._loop, name="health", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def get(self, container_id: str) -> Health | None:
        with self._lock:
            tracked = self._tracked.get(container_id)
            return tracked.health if tracked else None

    # -- the loop ---------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.turn()
            except Exception:  # noqa: BLE001 - the loop must outlive a bad turn
                log.exception("health check turn failed")

    def turn(self, now: float | None = None) -> None:
        """Start the checks that are due (one test seam: ``now``)."""
        now = time.monotonic() if now is None else now
        records = [r for r in self._checks.list(status=RUNNING) if r.spec.options.healthcheck]
        # A container that stopped keeps its last health, as Docker's does.
        with self._lock:
            for record in records:
                self._schedule(record, now)

    def _schedule(self, record: ContainerRecord, now: float) -> None:
        check = record.spec.options.healthcheck
        assert check is not None
        tracked = self._tracked.get(record.id)
        if tracked is None or tracked.started_at != (record.started_at or ""):
            tracked = _Tracked(record.started_at or "", now, now + _first(check), Health())
            self._tracked[record.id] = tracked
        if tracked.running is not None or now < tracked.due or self._pool is None:
            return
        tracked.running = self._pool.submit(self._probe, record.id, check)
        tracked.running.add_done_callback(lambda f: self._done(record, tracked, check, f))

    def _probe(self, container_id: str, check: Healthcheck) -> Probe:
        start = now_rfc3339()
        try:
            record = self._checks.exec(container_id, ExecRequest(ExecSpec(check.command)))
            done = self._checks.wait_exec(record.id, check.timeout_seconds)
            if done.status != Status.exited:
                self._checks.kill_exec(record.id, signal.SIGKILL)
                message = f"Health check exceeded timeout ({check.timeout_seconds:g}s)"
                return Probe(start, now_rfc3339(), -1, message)
            output = b""
            for chunk in self._checks.exec_logs(record.id):
                output += chunk
                if len(output) >= OUTPUT_BYTES:
                    break
            code = done.exit_code if done.exit_code is not None else -1
            text = output[:OUTPUT_BYTES].decode(errors="replace") or (done.error or "")
            return Probe(start, now_rfc3339(), code, text)
        except RuntimeFailure as err:
            return Probe(start, now_rfc3339(), -1, str(err))

    def _done(
        self, record: ContainerRecord, tracked: _Tracked, check: Healthcheck, f: Future[Probe]
    ) -> None:
        if f.cancelled():
            return
        probe = f.result()
        now = time.monotonic()
        with self._lock:
            tracked.running = None
            before = tracked.health
            health = judge(before, probe, check, now - tracked.started)
            tracked.health = health
            in_start = now - tracked.started < check.start_period_seconds
            every = check.start_interval_seconds if in_start else check.interval_seconds
            tracked.due = now + every
        if health.status != before.status:
            self._events.publish(
                container_event("health_status", record, health_status=str(health.status))
            )


def _first(check: Healthcheck) -> float:
    return check.start_interval_seconds if check.start_period_seconds else check.interval_seconds


def judge(before: Health, probe: Probe, check: Healthcheck, running_for: float) -> Health:
    """The health after ``probe``, by Docker's rules."""
    log_ = (*before.log, probe)[-LOG_PROBES:]
    if probe.exit_code == 0:
        return Health(HealthStatus.healthy, 0, log_)
    if before.status == HealthStatus.starting and running_for < check.start_period_seconds:
        return Health(before.status, before.failing_streak, log_)
    streak = before.failing_streak + 1
    status = HealthStatus.unhealthy if streak >= check.retries else before.status
    return Health(status, streak, log_)
