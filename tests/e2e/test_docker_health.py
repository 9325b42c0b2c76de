"""Health checks end to end (runtime/health.py): ``docker run --health-*`` with
the real CLI, ``State.Health`` in inspect, ``health_status`` events, the
native ``options.healthcheck`` over HTTP; real containers, real execs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, Docker, docker_runner
from tests.e2e.helpers import unique


@pytest.fixture
def docker(service: Service, tmp_path: Path) -> Docker:
    return docker_runner(service, tmp_path)


def _start(docker: Docker, name: str, *health: str) -> None:
    """A busybox ``sleep 300`` with the ``--health-*`` options given."""
    started = docker("run", "-d", "--name", name, *health, IMAGE, "sleep", "300")
    assert started.returncode == 0, started.stderr


def _health(docker: Docker, name: str) -> dict[str, Any]:
    inspected = json.loads(docker("inspect", name).stdout)[0]
    health: dict[str, Any] = inspected["State"].get("Health") or {}
    return health


def _until(docker: Docker, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = _health(docker, name)
        if health.get("Status") == status:
            return health
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {status}: {_health(docker, name)}")


def test_health_cmd_goes_unhealthy_then_healthy(docker: Docker) -> None:
    name = unique("health")
    since = time.time()
    _start(
        docker,
        name,
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
    )
    try:
        inspected = json.loads(docker("inspect", name).stdout)[0]
        check = inspected["Config"]["Healthcheck"]
        assert check["Test"] == ["CMD", "/bin/sh", "-c", "test -f /tmp/ok && echo fine"]
        assert (check["Interval"], check["Retries"]) == (200_000_000, 2)
        sick = _until(docker, name, "unhealthy")
        assert sick["FailingStreak"] >= 2
        assert all(probe["ExitCode"] == 1 for probe in sick["Log"])
        assert docker("exec", name, "touch", "/tmp/ok").returncode == 0
        well = _until(docker, name, "healthy")
        listed = docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
        assert listed.stdout.strip().endswith("(healthy)"), listed.stdout
        assert well["FailingStreak"] == 0
        assert well["Log"][-1]["ExitCode"] == 0 and well["Log"][-1]["Output"] == "fine\n"
        assert len(well["Log"]) <= 5
        events = docker(
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            f"container={name}",
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        )
        assert events.stdout.split("\n")[:2] == [
            "health_status: unhealthy",
            "health_status: healthy",
        ], events.stdout
    finally:
        docker("rm", "-f", name)


def test_a_check_past_its_timeout_fails(docker: Docker) -> None:
    name = unique("slow")
    _start(
        docker,
        name,
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
    )
    try:
        sick = _until(docker, name, "unhealthy")
        assert sick["Log"][0]["Output"] == "Health check exceeded timeout (0.3s)"
        assert sick["Log"][0]["ExitCode"] == -1
    finally:
        docker("rm", "-f", name)


def test_failures_in_the_start_period_do_not_count(docker: Docker) -> None:
    name = unique("grace")
    _start(
        docker,
        name,
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "--health-start-period",
        "60s",
        "--health-start-interval",
        "100ms",
        "--health-retries",
        "1",
    )
    try:
        deadline = time.monotonic() + 20
        while len(_health(docker, name).get("Log", [])) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        health = _health(docker, name)
        assert len(health["Log"]) >= 3
        assert (health["Status"], health["FailingStreak"]) == ("starting", 0)
    finally:
        docker("rm", "-f", name)


def test_native_healthcheck(client: httpx.Client) -> None:
    body = {
        "command": ["sleep", "300"],
        "image": "busybox",
        "options": {"healthcheck": {"command": ["true"], "interval_seconds": 0.2}},
    }
    created = client.post("/containers", json=body)
    assert created.status_code == 201, created.text
    ref = created.json()["id"]
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            state = client.get(f"/v1.47/containers/{ref}/json").json()["State"]
            status = state.get("Health", {}).get("Status")
            if status == "healthy":
                break
            time.sleep(0.1)
        assert status == "healthy"
        bad = client.post(
            "/containers",
            json={**body, "options": {"healthcheck": {"command": ["true"], "retries": 0}}},
        )
        assert bad.status_code == 422 and "retries" in bad.text
    finally:
        client.delete(f"/containers/{ref}", params={"force": "true"})
