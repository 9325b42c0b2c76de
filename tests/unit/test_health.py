"""runtime/health.py: Docker's rules for a status, and the monitor's schedule
over a fake runtime that records the execs it is asked for."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runtime.events import EventFilter, EventLog
from runtime.health import Health, HealthMonitor, HealthStatus, Probe, judge
from runtime.options import Healthcheck, Options
from runtime.records import ContainerRecord, ExecRecord
from runtime.spec import ContainerSpec, ExecRequest, ExecSpec, Status

CHECK = Healthcheck(("check",), interval_seconds=1, timeout_seconds=2, retries=2)
OK = Probe("s", "e", 0, "ok")
BAD = Probe("s", "e", 1, "bad")


def test_one_success_is_healthy_and_retries_failures_unhealthy() -> None:
    health = judge(Health(), BAD, CHECK, 100)
    assert (health.status, health.failing_streak) == (HealthStatus.starting, 1)
    health = judge(health, BAD, CHECK, 100)
    assert (health.status, health.failing_streak) == (HealthStatus.unhealthy, 2)
    health = judge(health, OK, CHECK, 100)
    assert (health.status, health.failing_streak) == (HealthStatus.healthy, 0)
    assert health.log == (BAD, BAD, OK)


def test_failures_in_the_start_period_do_not_count() -> None:
    check = Healthcheck(("c",), retries=1, start_period_seconds=10)
    assert judge(Health(), BAD, check, 5) == Health(HealthStatus.starting, 0, (BAD,))
    assert judge(Health(), BAD, check, 11).status == HealthStatus.unhealthy
    # Once healthy, the start period is over for Docker too.
    assert judge(Health(HealthStatus.healthy), BAD, check, 5).failing_streak == 1


def test_the_log_keeps_five() -> None:
    health = Health()
    for index in range(8):
        health = judge(health, Probe(str(index), "", 0, ""), CHECK, 100)
    assert [p.start for p in health.log] == ["3", "4", "5", "6", "7"]


class FakeChecks:
    """Execs that end with ``code`` at once, or never (``None``)."""

    def __init__(self, record: ContainerRecord) -> None:
        self.record = record
        self.code: int | None = 0
        self.execs: list[tuple[str, ...]] = []
        self.killed: list[tuple[str, int]] = []
        self.ran = threading.Event()

    def list(self, status: str | None = None) -> list[ContainerRecord]:
        return [self.record]

    def exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        self.execs.append(request.spec.command)
        return ExecRecord(f"e{len(self.execs)}", ref, Status.running, request.spec, "t")

    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord:
        status = Status.running if self.code is None else Status.exited
        spec = ExecSpec(("check",))
        return ExecRecord(ref, self.record.id, status, spec, "t", exit_code=self.code)

    def exec_logs(self, ref: str, stream: str | None = None) -> Iterator[bytes]:
        yield b"out\n"

    def kill_exec(self, ref: str, signal: int) -> None:
        self.killed.append((ref, signal))


Parts = tuple[HealthMonitor, FakeChecks, EventLog]


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    spec = ContainerSpec(command=("sleep",), hostname="h", options=Options(healthcheck=CHECK))
    record = ContainerRecord("c" * 64, "web", Status.running, spec, "t", started_at="t1")
    checks = FakeChecks(record)
    events = EventLog(str(tmp_path / "events"))
    monitor = HealthMonitor(checks, events)
    monitor._pool = ThreadPoolExecutor(1)  # the pool without the loop: turns by hand
    yield monitor, checks, events
    monitor.close()
    events.close()


def _settle(monitor: HealthMonitor) -> None:
    assert monitor._pool is not None
    monitor._pool.submit(lambda: None).result(5)


def test_the_monitor_runs_checks_when_due(parts: Parts) -> None:
    monitor, checks, events = parts
    monitor.turn(now=100.0)  # seen: the first check is one interval away
    assert checks.execs == [] and monitor.get("c" * 64) == Health()
    monitor.turn(now=101.0)
    _settle(monitor)
    health = monitor.get("c" * 64)
    assert checks.execs == [("check",)]
    assert health is not None and health.status == HealthStatus.healthy
    assert health.log[0].output == "out\n"
    [event] = list(events.read(EventFilter(since_ns=0)))
    assert (event.action, event.attributes["health_status"]) == ("health_status", "healthy")


def test_a_check_past_its_timeout_is_killed(parts: Parts) -> None:
    monitor, checks, _ = parts
    checks.code = None
    monitor.turn(now=100.0)
    monitor.turn(now=101.0)
    _settle(monitor)
    health = monitor.get("c" * 64)
    assert health is not None and health.log[0].output == "Health check exceeded timeout (2s)"
    assert checks.killed == [("e1", signal.SIGKILL)]
