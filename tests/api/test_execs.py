"""Exec routes and the attach WebSocket over a fake runtime.

The fake's logs are real files in a temporary directory, since attach
follows the same files the launcher fills; input, resizes and EOFs are
recorded as calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from runtime import ExecRecord, InvalidState, NotFound
from runtime.spec import ExecRequest, ExecSpec
from tests.fakes.runtime import FakeRuntime

CID = "c" * 64
EID = "e" * 64
T0 = "2026-11-29T05:00:00.000000Z"


def make_exec(status: str = "running", **changes: Any) -> ExecRecord:
    values: dict[str, Any] = {
        "id": EID,
        "container_id": CID,
        "status": status,
        "spec": ExecSpec(command=("sh",), tty=True),
        "created_at": T0,
        "pid": 99,
        "started_at": T0,
    }
    values.update(changes)
    return ExecRecord(**values)


@pytest.fixture
def fake(tmp_path: Path) -> FakeRuntime:
    """A tty exec that exits with 3; its logs in ``tmp_path``, stdout already written."""
    fake = FakeRuntime(exec_record=make_exec())
    fake.exec_exit.set_result(make_exec("exited", exit_code=3))
    fake.exec_output = [b"2026-11-29T05:00:00.000000000Z earlier output\n"]
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    stdout.write_bytes(b"earlier output\n")
    fake.attach_paths = (str(stdout), str(stderr))
    return fake


# -- exec routes ----------------------------------------------------------------------
def test_exec_answers_201_and_passes_every_field(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "command": ["sh", "-c", "id"],
        "tty": True,
        "stdin": True,
        "env": {"A": "1"},
        "workdir": "/tmp",
        "user": "app:staff",
        "tty_size": {"rows": 30, "cols": 100},
    }
    response = client.post("/containers/web/exec", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == EID and response.json()["exit_code"] is None
    assert fake.calls[0] == (
        "exec",
        (
            "web",
            ExecRequest(
                spec=ExecSpec(
                    command=("sh", "-c", "id"),
                    tty=True,
                    stdin=True,
                    env={"A": "1"},
                    workdir="/tmp",
                    user="app:staff",
                ),
                tty_size=(30, 100),
            ),
        ),
        {},
    )


def test_exec_wait_answers_with_the_exit_code(client: TestClient) -> None:
    response = client.post("/containers/web/exec", params={"wait": "true"}, json={"command": ["x"]})
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["exit_code"]) == ("exited", 3)
    assert client.get(f"/execs/{EID}", params={"wait": "true"}).json()["exit_code"] == 3
    assert client.post(f"/execs/{EID}/wait").json()["exit_code"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": []}, "command"),
        ({"command": ["a\0b"]}, "command"),
        # execve(2) would fail with E2BIG on one string of MAX_ARG_STRLEN or more.
        ({"command": ["echo", "x" * 128 * 1024]}, "longer than 131072 bytes"),
        ({"command": ["x"], "workdir": "relative"}, "workdir"),
        ({"command": ["x"], "user": "a b"}, "user"),
        ({"command": ["x"], "env": {"A=B": "1"}}, "env"),
        ({"command": ["x"], "tty_size": {"rows": 0, "cols": 80}}, "tty_size"),
        ({"command": ["x"], "privileged": True}, "privileged"),
    ],
)
def test_bad_exec_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/containers/web/exec", json=body)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_exec_in_a_stopped_container_is_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.error = InvalidState("container x is not running")
    response = client.post("/containers/web/exec", json={"command": ["true"]})
    assert response.status_code == 409
    assert response.json()["detail"] == "container x is not running"
    fake.error = NotFound("exec", "nope")
    assert client.get("/execs/nope").status_code == 404


def test_a_containers_execs_are_listed(client: TestClient) -> None:
    listed = client.get("/containers/web/execs").json()
    assert [e["id"] for e in listed] == [EID]


# -- attach ---------------------------------------------------------------------------
def test_attach_replays_relays_input_and_ends_with_the_exit(
    client: TestClient, fake: FakeRuntime
) -> None:
    with client.websocket_connect("/containers/web/attach") as ws:
        assert ws.receive_bytes() == b"earlier output\n"
        ws.send_bytes(b"ls\r")
        assert ws.receive_bytes() == b"echo:ls\r"
        ws.send_text(json.dumps({"type": "resize", "rows": 40, "cols": 120}))
        ws.send_text("typed as text")  # not a control message: input
        assert ws.receive_bytes() == b"echo:typed as text"
        ws.send_text(json.dumps({"type": "eof"}))
        ws.send_text(json.dumps({"type": "bogus"}))
        assert json.loads(ws.receive_text())["type"] == "error"
        fake.done.set_result(make_exec("exited", exit_code=3, signal=None, error=None))
        assert json.loads(ws.receive_text()) == {
            "type": "exit",
            "exit_code": 3,
            "signal": None,
            "error": None,
        }
    ops = [(op, args) for op, args, _ in fake.calls]
    [target] = fake.targets
    assert ("attach_target", ("container", "web")) in ops
    assert ("resize", (target, 40, 120)) in ops and ("close_input", (target,)) in ops


def test_attach_without_logs_starts_at_the_end(client: TestClient, fake: FakeRuntime) -> None:
    fake.done.set_result(make_exec("exited", exit_code=0))
    with client.websocket_connect(f"/execs/{EID}/attach?logs=false") as ws:
        assert json.loads(ws.receive_text())["type"] == "exit"
    assert fake.calls[0] == ("attach_target", ("exec", EID), {})


def test_attach_lines_mode_speaks_text(client: TestClient, fake: FakeRuntime) -> None:
    with client.websocket_connect("/containers/web/attach?lines=true") as ws:
        assert ws.receive_text() == "earlier output\n"
        ws.send_text("hostname")
        assert ws.receive_text() == "echo:hostname\n"


def test_attach_refusals_close_with_4000_plus_the_status(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.error = NotFound("container", "nope")
    with client.websocket_connect("/containers/nope/attach") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 4404
    assert "no such container" in closed.value.reason


def test_attach_split_tags_each_frame_with_its_stream(
    client: TestClient, fake: FakeRuntime
) -> None:
    Path(fake.attach_paths[1]).write_bytes(b"to stderr\n")
    fake.done.set_result(make_exec("exited", exit_code=0))
    with client.websocket_connect("/containers/web/attach?split=true") as ws:
        assert ws.receive_bytes() == b"\x01earlier output\n"
        assert ws.receive_bytes() == b"\x02to stderr\n"
        assert json.loads(ws.receive_text())["type"] == "exit"


# -- logs -----------------------------------------------------------------------------
def test_exec_logs_pass_times_in_ns(client: TestClient, fake: FakeRuntime) -> None:
    params = {"timestamps": "1", "since": "2026-11-29T05:00:00Z", "until": "1795928401.5"}
    response = client.get(f"/execs/{EID}/logs", params=params)
    assert response.status_code == 200
    assert response.text == "2026-11-29T05:00:00.000000000Z earlier output\n"
    assert fake.calls == [
        (
            "exec_logs",
            (EID,),
            {
                "stream": None,
                "tail": None,
                "follow": False,
                "timestamps": True,
                "since": 1_795_928_400 * 10**9,
                "until": 1_795_928_401_500_000_000,
            },
        )
    ]


@pytest.mark.parametrize("field", ["since", "until"])
def test_exec_logs_bad_times_are_422_naming_the_field(
    client: TestClient, fake: FakeRuntime, field: str
) -> None:
    response = client.get(f"/execs/{EID}/logs", params={field: "soon"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
    assert fake.calls == []
