"""``POST /containers/kill`` over a fake runtime: the body it takes, the
selector and signal it hands on, the answer's shape, and 422s naming the
field.  The fake checks the selector and the signal with the runtime's own
functions, as Runtime.kill_many does before anything is sent."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime import AmbiguousReference, KillResult, Selector
from tests.fakes.runtime import ID, FakeRuntime

OTHER = "f" * 64


@pytest.fixture
def fake() -> FakeRuntime:
    fake = FakeRuntime()
    fake.kill_result = KillResult(9, (ID,), (OTHER,), ("nosuch",))
    return fake


def kill(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/containers/kill", json=body)


def test_labels_reach_the_runtime_and_the_answer_lists_ids(
    client: TestClient, fake: FakeRuntime
) -> None:
    response = kill(client, {"labels": ["a=1", "team"]})
    assert response.status_code == 200
    assert response.json() == {
        "signal": "SIGKILL",
        "killed": [ID],
        "not_running": [OTHER],
        "not_found": ["nosuch"],
    }
    assert fake.calls == [("kill_many", (Selector(labels=("a=1", "team")), "SIGKILL"), {})]


def test_every_criterion_and_the_signal_are_passed_on(
    client: TestClient, fake: FakeRuntime
) -> None:
    body = {"labels": ["a"], "name_prefix": "job-", "ids": ["web", ID[:8]], "signal": "TERM"}
    data = kill(client, body).json()
    assert data["signal"] == "SIGTERM"
    [(_, (selector, signal), _)] = fake.calls
    assert selector == Selector(labels=("a",), name_prefix="job-", refs=("web", ID[:8]))
    assert signal == "TERM"


def test_a_signal_number_is_taken(client: TestClient) -> None:
    assert kill(client, {"all": True, "signal": 15}).json()["signal"] == "SIGTERM"


def test_an_empty_selection_is_200_with_empty_lists(client: TestClient, fake: FakeRuntime) -> None:
    fake.kill_result = KillResult(9, (), (), ())
    response = kill(client, {"labels": ["nobody=here"]})
    assert response.status_code == 200
    assert response.json() == {
        "signal": "SIGKILL",
        "killed": [],
        "not_running": [],
        "not_found": [],
    }


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"all": True, "signal": "SIGNOPE"}, ["body", "signal"]),
        ({"all": True, "signal": 0}, ["body", "signal"]),
        ({"all": True, "signal": True}, ["body", "signal"]),
        ({}, ["body", "all"]),  # nothing selected is not "everything"
        ({"labels": ["a", "=1"]}, ["body", "labels", 1]),
        ({"labels": [""]}, ["body", "labels", 0]),
        ({"labels": "a=1"}, ["body", "labels"]),
        ({"name_prefix": ""}, ["body", "name_prefix"]),
        ({"ids": [""]}, ["body", "ids", 0]),
        ({"ids": ["x"] * 10_001}, ["body", "ids"]),
        ({"all": True, "force": True}, ["body", "force"]),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], loc: list[Any]
) -> None:
    response = kill(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc


def test_an_ambiguous_id_prefix_is_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.error = AmbiguousReference("0", 2)
    response = kill(client, {"ids": ["0"]})
    assert response.status_code == 409
    assert "matches 2 containers" in response.json()["detail"]


def test_a_container_named_kill_keeps_its_own_routes(client: TestClient, fake: FakeRuntime) -> None:
    """The bulk route has one segment after /containers, every single-container
    POST has two, and GET /containers/{ref} is another method: no shadowing."""
    fake.record = dataclasses.replace(fake.record, name="kill")
    assert client.post("/containers/kill/kill").status_code == 200
    assert client.get("/containers/kill").status_code == 200
    assert [(op, args) for op, args, _ in fake.calls] == [
        ("kill", ("kill", "SIGKILL")),
        ("get", ("kill",)),
    ]
