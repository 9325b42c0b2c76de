"""``GET /events`` over HTTP with real containers: the life of a container in
order with its attributes, filters, a follower, ``until``, a replay across a
service restart, and a bad ``since``."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import httpx

from tests.e2e.conftest import Service, run

MiB = 1 << 20


def events(client: httpx.Client, since: float, **params: Any) -> list[dict[str, Any]]:
    """The events from ``since`` until now (a stream that ends at once)."""
    response = client.get(
        "/events", params={"since": f"{since:.6f}", "until": time.time(), **params}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def unique() -> str:
    return f"ev-{secrets.token_hex(4)}"


def test_a_containers_life_in_order_with_its_attributes(client: httpx.Client) -> None:
    since = time.time()
    name = unique()
    done = run(client, ["sh", "-c", "exit 3"], name=name, labels={"team": "a b"})
    assert client.delete(f"/containers/{name}").status_code == 204
    seen = events(client, since, container=name)
    assert [e["action"] for e in seen] == ["create", "start", "die", "destroy"]
    for event in seen:
        assert event["type"] == "container"
        assert event["id"] == done["id"] and event["name"] == name
        assert event["attributes"]["image"] == "host"
        assert event["attributes"]["label.team"] == "a b"
        assert event["time"].endswith("Z") and len(event["time"]) == 30
    die = seen[2]["attributes"]
    assert die["exit_code"] == "3" and "signal" not in die
    assert die["oom_killed"] == "false" and "timed_out" not in die
    times = [e["time_ns"] for e in seen]
    assert times == sorted(times)


def test_kill_then_die_say_the_signal(client: httpx.Client) -> None:
    since = time.time()
    name = unique()
    assert client.post("/containers", json={"command": ["sleep", "30"], "name": name}).is_success
    assert client.post(f"/containers/{name}/kill", params={"signal": "SIGKILL"}).is_success
    client.post(f"/containers/{name}/wait")
    seen = events(client, since, container=name)
    assert [e["action"] for e in seen] == ["create", "start", "kill", "die"]
    assert seen[2]["attributes"]["signal"] == "SIGKILL"
    assert seen[3]["attributes"]["signal"] == "SIGKILL"
    assert seen[3]["attributes"]["exit_code"] == "137"


def test_stop_reports_kill_die_stop(client: httpx.Client) -> None:
    since = time.time()
    name = unique()
    assert client.post("/containers", json={"command": ["sleep", "30"], "name": name}).is_success
    assert client.post(f"/containers/{name}/stop", params={"timeout": 1}).is_success
    actions = [e["action"] for e in events(client, since, container=name)]
    assert actions[-2:] == ["die", "stop"] and "kill" in actions


def test_timeout_and_oom_are_said(client: httpx.Client) -> None:
    since = time.time()
    slow, hog = unique(), unique()
    run(client, ["sleep", "30"], name=slow, limits={"timeout_seconds": 0.3})
    run(
        client,
        ["python3", "-c", "data = b'x' * (256 << 20)"],
        name=hog,
        limits={"memory_bytes": 64 * MiB},
    )
    dies = {e["name"]: e["attributes"] for e in events(client, since, action="die")}
    assert dies[slow]["timed_out"] == "true"
    assert dies[hog]["oom_killed"] == "true" and dies[hog]["signal"] == "SIGKILL"


def test_filters_by_type_action_label(client: httpx.Client) -> None:
    since = time.time()
    tag = secrets.token_hex(4)
    name = unique()
    assert client.post(
        "/containers", json={"command": ["sleep", "30"], "name": name, "labels": {"tag": tag}}
    ).is_success
    exec_ = client.post(
        f"/containers/{name}/exec", params={"wait": "true"}, json={"command": ["true"]}
    )
    assert exec_.status_code == 201
    run(client, ["true"], labels={"tag": "other"})
    client.delete(f"/containers/{name}", params={"force": "true"})

    execs = events(client, since, type="exec", container=name)
    assert [e["action"] for e in execs] == ["exec_create", "exec_start", "exec_die"]
    assert execs[-1]["attributes"] == {
        "container": execs[0]["attributes"]["container"],
        "container_name": name,
        "exit_code": "0",
    }
    labelled = events(client, since, label=f"tag={tag}")
    assert {e["name"] for e in labelled} == {name}
    assert {e["action"] for e in labelled} >= {"create", "start", "kill", "die", "destroy"}
    both = events(client, since, action=["create", "destroy"], label="tag")
    assert {e["action"] for e in both} == {"create", "destroy"}


def test_a_follower_sees_what_starts_after_it(service: Service) -> None:
    name = unique()
    seen: list[dict[str, Any]] = []
    subscribed = threading.Event()

    def follow() -> None:
        with httpx.stream(
            "GET", f"{service.url}/events", params={"container": name}, timeout=20
        ) as r:
            subscribed.set()
            for line in r.iter_lines():
                seen.append(json.loads(line))
                if seen[-1]["action"] == "die":
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert subscribed.wait(10)
    time.sleep(0.2)  # the stream has taken its first (empty) step
    started = time.monotonic()
    with httpx.Client(base_url=service.url, timeout=30) as client:
        run(client, ["true"], name=name)
    follower.join(10)
    assert [e["action"] for e in seen] == ["create", "start", "die"]
    # Woken by the publish, not by the idle second.
    assert time.monotonic() - started < 2


def test_until_ends_the_stream(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.get("/events", params={"until": f"{time.time() + 0.5:.3f}"})
    assert response.status_code == 200
    assert 0.4 < time.monotonic() - started < 3


def test_a_bad_since_is_422_naming_it(client: httpx.Client) -> None:
    response = client.get("/events", params={"since": "yesterday"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]
    response = client.get("/events", params={"type": "planet"})
    assert response.status_code == 422


def test_since_replays_across_a_restart(own_service: Service) -> None:
    since = time.time()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=30) as client:
        done = run(client, ["true"])
    own_service.stop()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=30) as client:
        seen = events(client, since, container=done["id"])
    assert [e["action"] for e in seen] == ["create", "start", "die"]
