"""The lifecycle verbs' handlers, native (app/routes/lifecycle.py) and
Docker's (app/docker/lifecycle.py), over the fake runtime."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from runtime import InvalidState, NameInUse
from runtime.spec import Limits, RestartPolicy, Status
from tests.fakes.runtime import ID, FakeRuntime


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


# -- native -------------------------------------------------------------------
def test_restart_passes_the_timeout(client: TestClient, fake: FakeRuntime) -> None:
    got = client.post(f"/containers/{ID}/restart", params={"timeout": 2.5})
    assert got.status_code == 200, got.text
    assert fake.commands() == [("restart", (ID, 2.5), {})]
    assert client.post(f"/containers/{ID}/restart", params={"timeout": -1}).status_code == 422


def test_rename_checks_the_name_and_maps_a_clash_to_409(
    client: TestClient, fake: FakeRuntime
) -> None:
    got = client.post(f"/containers/{ID}/rename", params={"name": "db"})
    assert (got.status_code, got.json()["name"]) == (200, "db")
    bad = client.post(f"/containers/{ID}/rename", params={"name": "-x"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "name"]
    fake.errors["rename"] = NameInUse("db")
    clash = client.post(f"/containers/{ID}/rename", params={"name": "db"})
    assert clash.status_code == 409
    assert "already in use" in clash.json()["detail"]


def test_pause_shows_paused_and_refuses_a_stopped_container(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.answers["pause"] = dataclasses.replace(fake.record, results={"paused": True})
    got = client.post(f"/containers/{ID}/pause")
    assert (got.status_code, got.json()["paused"], got.json()["status"]) == (
        200,
        True,
        "running",
    )
    fake.record = dataclasses.replace(fake.record, status=Status.exited, exit_code=0)
    assert client.post(f"/containers/{ID}/pause").status_code == 409
    # An exited record with a stale flag is not shown as paused.
    fake.record = dataclasses.replace(fake.record, results={"paused": True})
    assert client.get(f"/containers/{ID}").json()["paused"] is False


def test_unpause_maps_not_paused_to_409(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post(f"/containers/{ID}/unpause").status_code == 200
    fake.errors["unpause"] = InvalidState("container x is not paused")
    assert client.post(f"/containers/{ID}/unpause").status_code == 409


def test_update_sends_only_the_given_limits(client: TestClient, fake: FakeRuntime) -> None:
    got = client.post(f"/containers/{ID}/update", json={"memory_bytes": 64 << 20})
    assert got.status_code == 200, got.text
    assert fake.commands() == [("update", (ID, Limits(memory_bytes=64 << 20)), {})]
    for body, field in (({"cpus": 0}, "cpus"), ({"timeout_seconds": 1}, "timeout_seconds")):
        bad = client.post(f"/containers/{ID}/update", json=body)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][-1] == field


def test_top_answers_titles_and_rows(client: TestClient, fake: FakeRuntime) -> None:
    got = client.get(f"/containers/{ID}/top", params={"ps_args": "aux"})
    assert got.json() == {
        "titles": ["UID", "PID", "CMD"],
        "processes": [["root", "4242", "sleep 60"]],
    }
    assert fake.commands() == [("top", (ID, "aux"), {})]


# -- Docker -------------------------------------------------------------------
def test_docker_verbs_answer_204(client: TestClient, fake: FakeRuntime) -> None:
    for verb in ("restart?t=3", "pause", "unpause", "rename?name=db"):
        got = client.post(f"/v1.47/containers/{ID}/{verb}")
        assert got.status_code == 204, (verb, got.text)
    assert fake.commands() == [
        ("restart", (ID, 3.0), {}),
        ("pause", (ID,), {}),
        ("unpause", (ID,), {}),
        ("rename", (ID, "db"), {}),
    ]


def test_docker_rename_refuses_a_bad_name_in_dockers_words(client: TestClient) -> None:
    got = client.post(f"/v1.47/containers/{ID}/rename", params={"name": "a b"})
    assert got.status_code == 400
    assert got.json()["message"].startswith("Invalid container name (a b)")


def test_docker_pause_of_a_stopped_container_is_a_409(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.record = dataclasses.replace(fake.record, status=Status.exited, exit_code=0)
    got = client.post(f"/v1.47/containers/{ID}/pause")
    assert got.status_code == 409
    assert "not running" in got.json()["message"]


def test_docker_update_takes_what_the_cli_sends(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "Memory": 64 << 20,
        "NanoCpus": 500_000_000,
        "PidsLimit": 30,
        "CpuShares": 0,
        "MemorySwap": 0,
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }
    got = client.post(f"/v1.47/containers/{ID}/update", json=body)
    assert (got.status_code, got.json()) == (200, {"Warnings": []})
    assert fake.commands() == [
        ("update", (ID, Limits(memory_bytes=64 << 20, cpus=0.5, pids=30)), {})
    ]


def test_docker_update_passes_restart_policy_and_tuning(
    client: TestClient, fake: FakeRuntime
) -> None:
    """docker-py's ``update_container(restart_policy=..., cpu_shares=...)``."""
    body = {
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 42},
        "CpuShares": 3,
        "MemoryReservation": 32 << 20,
    }
    got = client.post(f"/v1.47/containers/{ID}/update", json=body)
    assert got.status_code == 200, got.text
    policy = RestartPolicy("on-failure", 42)
    tuning = {"cpu_shares": 3, "memory_reservation_bytes": 32 << 20}
    assert fake.commands() == [
        ("update", (ID, Limits()), {"restart_policy": policy, "tuning": tuning})
    ]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"RestartPolicy": {"Name": "sometimes"}}, "restart_policy"),
        ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}, "retry count"),
        ({"CpuShares": -5}, "CpuShares"),
    ],
)
def test_docker_update_refuses_bad_values(
    client: TestClient, body: dict[str, object], named: str
) -> None:
    got = client.post(f"/v1.47/containers/{ID}/update", json=body)
    assert got.status_code == 400 and named in got.json()["message"], got.text


def test_docker_update_refuses_what_it_cannot_change(client: TestClient) -> None:
    got = client.post(f"/v1.47/containers/{ID}/update", json={"BlkioWeight": 300})
    assert got.status_code == 400
    assert "BlkioWeight" in got.json()["message"]
    low = client.post(f"/v1.47/containers/{ID}/update", json={"Memory": 1000})
    assert low.status_code == 400
    assert "memory_bytes" in low.json()["message"]


def test_docker_top_shape(client: TestClient) -> None:
    got = client.get(f"/v1.47/containers/{ID}/top")
    assert got.json() == {
        "Titles": ["UID", "PID", "CMD"],
        "Processes": [["root", "4242", "sleep 60"]],
    }


def test_docker_inspect_and_list_say_paused(client: TestClient, fake: FakeRuntime) -> None:
    fake.record = dataclasses.replace(fake.record, results={"paused": True})
    state = client.get(f"/v1.47/containers/{ID}/json").json()["State"]
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    listed = client.get("/v1.47/containers/json", params={"filters": '{"status":["paused"]}'})
    assert [c["State"] for c in listed.json()] == ["paused"]
    assert listed.json()[0]["Status"].endswith("(Paused)")
