"""``GET /metrics`` over HTTP with real containers, on a service with a token
and ``--metrics-port``: counters, the launch histogram, exits by outcome,
route templates, the token, the separate port."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, free_port, run

TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    state: Path = tmp_path_factory.mktemp("metrics") / "state"
    svc = Service(
        state_dir=state,
        port=free_port(),
        extra_args=["--metrics-port", str(free_port())],
        env={"MYDOCKER_TOKEN": TOKEN},
    )
    svc.start()
    yield svc
    svc.close()


@pytest.fixture
def client(metered: Service) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=metered.url, timeout=60, headers=headers) as c:
        yield c


def scrape(client: httpx.Client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_launches_and_exits_are_counted(client: httpx.Client) -> None:
    before = scrape(client)
    run(client, ["true"])
    run(client, ["sh", "-c", "exit 4"])
    ref = client.post("/containers", json={"command": ["sleep", "30"]}).json()["id"]
    during = scrape(client)
    assert during["mydocker_containers_running"] >= 1
    client.post(f"/containers/{ref}/kill")
    client.post(f"/containers/{ref}/wait")
    after = scrape(client)

    def grew(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert grew("mydocker_launch_seconds_count") == 3
    assert grew('mydocker_containers_started_total{image="host"}') == 3
    assert grew('mydocker_container_exits_total{outcome="exit_0"}') == 1
    assert grew('mydocker_container_exits_total{outcome="exit_nonzero"}') == 1
    assert grew('mydocker_container_exits_total{outcome="signal"}') == 1
    assert grew('mydocker_events_published_total{type="container"}') >= 3 * 3 + 1
    assert grew("mydocker_records_write_seconds_count") >= 6
    # 1-50 ms launches land in the fine buckets, not all in the last one.
    assert after['mydocker_launch_seconds_bucket{le="0.1"}'] > 0
    assert after["mydocker_disk_reserve_released"] == 0
    # The launcher's loop answered the scrape's no-op request, and not late.
    assert 0 < after["mydocker_launcher_loop_lag_seconds"] < 5


def test_a_launch_error_is_counted_by_step(client: httpx.Client) -> None:
    before = scrape(client)
    done = run(client, ["/no/such/command"])
    assert done["exit_code"] == 127
    after = scrape(client)
    name = 'mydocker_launch_errors_total{step="exec"}'
    assert after[name] - before.get(name, 0) == 1
    assert after["mydocker_launch_seconds_count"] == before["mydocker_launch_seconds_count"]


def test_http_metrics_use_route_templates(client: httpx.Client) -> None:
    ref = run(client, ["true"])["id"]
    assert client.get(f"/containers/{ref}").status_code == 200
    assert client.get(f"/containers/{ref[:12]}/logs").status_code == 200
    assert client.get("/v1.43/containers/json").status_code == 200
    text = client.get("/metrics").text
    assert ref[:12] not in text
    line = 'mydocker_http_requests_total{method="GET",route="/containers/{ref}",status="200"}'
    assert line in text
    assert 'route="/containers/{ref}/logs"' in text
    assert 'route="/v{version}/containers/json"' in text
    assert re.search(
        r'mydocker_http_request_seconds_count\{method="POST",route="/containers"', text
    )


def test_the_token_guards_metrics_and_the_port_does_not(metered: Service) -> None:
    assert httpx.get(f"{metered.url}/metrics").status_code == 401
    port = metered.extra_args[1]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert "mydocker_launch_seconds_bucket" in response.text
    assert "mydocker_containers_running" in response.text
