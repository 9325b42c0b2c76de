"""``POST /containers/kill`` over HTTP with real containers: it signals
exactly the selected running ones, reports the rest, and refuses bad input
before signalling anything."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import create, unique, wait


@pytest.fixture
def group(client: httpx.Client) -> Iterator[str]:
    """A label value of the test's own; its containers are removed afterwards."""
    tag = unique("kill")
    yield tag
    for c in client.get("/containers").json():
        if c["labels"].get("group") == tag:
            client.delete(f"/containers/{c['id']}", params={"force": "true"})


def start(client: httpx.Client, group: str, n: int, **labels: str) -> list[str]:
    return [
        str(create(client, ["sleep", "60"], labels={"group": group, **labels})["id"])
        for _ in range(n)
    ]


def test_a_label_kills_exactly_its_containers(client: httpx.Client, group: str) -> None:
    ones = start(client, group, 5, a="1")
    twos = start(client, group, 2, a="2")
    response = client.post("/containers/kill", json={"labels": [f"group={group}", "a=1"]})
    assert response.status_code == 200, response.text
    data = response.json()
    assert sorted(data["killed"]) == sorted(ones)
    assert (data["signal"], data["not_running"], data["not_found"]) == ("SIGKILL", [], [])
    for cid in ones:
        done = wait(client, cid, timeout=30)
        assert (done["status"], done["exit_code"], done["signal"]) == ("exited", 137, "SIGKILL")
    for cid in twos:
        assert client.get(f"/containers/{cid}").json()["status"] == "running"
    # Again: the five have exited, so nothing is selected (filters pick running ones).
    again = client.post("/containers/kill", json={"labels": [f"group={group}", "a=1"]}).json()
    assert again["killed"] == [] and again["not_running"] == []


def test_ids_report_the_exited_and_the_unknown(client: httpx.Client, group: str) -> None:
    alive, dead = start(client, group, 2)
    client.post(f"/containers/{dead}/kill")
    wait(client, dead, timeout=30)
    body = {"ids": [alive[:16], dead, "no-such-container"], "signal": "SIGTERM"}
    data = client.post("/containers/kill", json=body).json()
    assert data == {
        "signal": "SIGTERM",
        "killed": [alive],
        "not_running": [dead],
        "not_found": ["no-such-container"],
    }
    # sleep has no SIGTERM handler, and PID 1 of a namespace only receives
    # the signals it handles (pid_namespaces(7)): it keeps running, as after
    # the single kill.
    assert client.get(f"/containers/{alive}").json()["status"] == "running"


def test_a_bad_signal_is_422_and_kills_nothing(client: httpx.Client, group: str) -> None:
    [cid] = start(client, group, 1)
    response = client.post(
        "/containers/kill", json={"labels": [f"group={group}"], "signal": "SIGNOPE"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "signal"]
    assert client.get(f"/containers/{cid}").json()["status"] == "running"


def test_an_empty_selection_is_200_with_empty_lists(client: httpx.Client) -> None:
    response = client.post("/containers/kill", json={"labels": [f"group={unique('none')}"]})
    assert response.status_code == 200
    assert response.json() == {
        "signal": "SIGKILL",
        "killed": [],
        "not_running": [],
        "not_found": [],
    }
