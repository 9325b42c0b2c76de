"""Restart policies with real containers over the native API: on-failure
with a count, always with Docker's back-off, a user's stop not undone,
and what a service restart brings back."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from tests.e2e.conftest import Service, logs
from tests.e2e.helpers import create


def until(client: httpx.Client, ref: str, check: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/containers/{ref}").json()
        if check(record):
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.05)


def settled(client: httpx.Client, ref: str, seconds: float = 1.5) -> dict[str, Any]:
    """The record once it has stayed exited, unchanged, for ``seconds``."""
    record = until(client, ref, lambda r: r["status"] == "exited")
    time.sleep(seconds)
    again: dict[str, Any] = client.get(f"/containers/{ref}").json()
    assert again == record, "it was restarted again"
    return again


def test_on_failure_restarts_up_to_its_count(client: httpx.Client) -> None:
    policy = {"name": "on-failure", "maximum_retry_count": 2}
    container = create(
        client, ["sh", "-c", "echo run; exit 3"], image="busybox", restart_policy=policy
    )
    until(client, container["id"], lambda r: r["restart_count"] == 2)
    final = settled(client, container["id"])
    assert (final["exit_code"], final["restart_count"], final["restart_policy"]) == (3, 2, policy)
    assert logs(client, container["id"]) == "run\n" * 3


def test_on_failure_does_not_restart_a_success_and_no_never_restarts(client: httpx.Client) -> None:
    ok = create(client, ["true"], image="busybox", restart_policy={"name": "on-failure"})
    plain = create(client, ["false"], image="busybox")
    for container in (ok, plain):
        assert settled(client, container["id"])["restart_count"] == 0


def test_always_backs_off_and_a_user_stop_ends_it(client: httpx.Client) -> None:
    container = create(
        client, ["sh", "-c", "echo run"], image="busybox", restart_policy={"name": "always"}
    )
    until(client, container["id"], lambda r: r["restart_count"] >= 4)
    stamped = logs(client, container["id"], timestamps="true").splitlines()
    times = [datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")) for line in stamped]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # 100 ms, doubled after each short run: lower bounds only (a slow machine adds).
    for index, gap in enumerate(gaps[:4]):
        assert gap >= 0.1 * 2**index * 0.9, gaps
    stopped = client.post(f"/containers/{container['id']}/stop", params={"timeout": 1})
    assert stopped.status_code == 200
    final = settled(client, container["id"])
    assert final["status"] == "exited"


def test_a_running_always_container_stopped_by_the_user_stays_stopped(client: httpx.Client) -> None:
    container = create(
        client, ["sleep", "60"], image="busybox", restart_policy={"name": "unless-stopped"}
    )
    stopped = client.post(f"/containers/{container['id']}/stop", params={"timeout": 1}).json()
    assert stopped["status"] == "exited"
    assert settled(client, container["id"])["restart_count"] == 0


def test_a_restart_policy_with_auto_remove_is_refused(client: httpx.Client) -> None:
    body = {"command": ["true"], "auto_remove": True, "restart_policy": {"name": "always"}}
    got = client.post("/containers", json=body)
    assert got.status_code == 422 and "auto_remove" in got.text
    got = client.post("/containers", json={"command": ["true"], "restart_policy": {"name": "x"}})
    assert got.status_code == 422 and got.json()["detail"][0]["loc"][:2] == [
        "body",
        "restart_policy",
    ]


def test_a_service_restart_brings_back_always_but_not_unless_stopped(own_service: Service) -> None:
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        made = {}
        for policy in ("always", "unless-stopped"):
            made[policy] = create(
                client,
                ["sh", "-c", "echo up; exec sleep 60"],
                image="busybox",
                restart_policy={"name": policy},
            )
            client.post(f"/containers/{made[policy]['id']}/stop", params={"timeout": 1})
            settled(client, made[policy]["id"], 0.5)
        failing = create(
            client,
            ["sh", "-c", "echo try; exit 1"],
            image="busybox",
            restart_policy={"name": "on-failure", "maximum_retry_count": 1},
        )
        until(client, failing["id"], lambda r: r["restart_count"] == 1)
        assert settled(client, failing["id"])["restart_count"] == 1
    own_service.stop()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        back = until(client, made["always"]["id"], lambda r: r["status"] == "running")
        assert back["restart_count"] == 1
        assert logs(client, made["always"]["id"]) == "up\nup\n"
        assert settled(client, made["unless-stopped"]["id"], 1)["restart_count"] == 0
        # Its count is used up, and it is kept across the restart.
        assert settled(client, failing["id"], 0.5)["restart_count"] == 1
        client.post(f"/containers/{made['always']['id']}/kill")


def test_a_bulk_kill_is_a_users_stop_too(client: httpx.Client) -> None:
    label = f"bulk-{time.monotonic_ns()}"
    container = create(
        client,
        ["sleep", "60"],
        image="busybox",
        labels={label: ""},
        restart_policy={"name": "always"},
    )
    killed = client.post("/containers/kill", json={"labels": [label]}).json()
    assert killed["killed"] == [container["id"]]
    assert settled(client, container["id"])["restart_count"] == 0
