"""The /containers routes over a fake runtime: status codes, shapes, 422s.

The fake records every call, so each test can check what the handler asked
of the runtime, and raises whatever runtime error a test sets up, so the
error table in app/errors.py is exercised route by route.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.deps import get_runtime
from app.main import create_app
from app.schemas import ContainerCreate
from app.schemas.limits import limits_public
from runtime import (
    AmbiguousReference,
    ContainerRecord,
    InvalidArgument,
    InvalidState,
    NameInUse,
    NotFound,
    RuntimeFailure,
    Unavailable,
)
from runtime.options import Options
from runtime.spec import ContainerSpec, Limits, SecurityRequest
from tests.fakes.runtime import FakeRuntime

ID = "0123456789abcdef" * 4
T0 = "2026-11-29T05:00:00.000000Z"
T1 = "2026-11-29T05:00:01.500000Z"


def make_record(status: str = "running", **changes: Any) -> ContainerRecord:
    values: dict[str, Any] = {
        "id": ID,
        "name": "web",
        "status": status,
        "spec": ContainerSpec(command=("sleep", "60"), hostname=ID[:12]),
        "created_at": T0,
        "pid": 4242,
        "started_at": T0 if status != "created" else None,
    }
    if status == "exited":
        values.update(exit_code=0, finished_at=T1)
    values.update(changes)
    return ContainerRecord(**values)


def make_fake() -> FakeRuntime:
    """A running ``web``, an exited ``old`` beside it, and two lines of output."""
    fake = FakeRuntime(make_record(), others=[make_record("exited", id="f" * 64, name="old")])
    fake.log_output = [b"hello\n", b"world\n"]
    return fake


@pytest.fixture
def fake() -> FakeRuntime:
    return make_fake()


PUBLIC_KEYS = {
    "id",
    "networks",
    "mounts",
    "init",
    "restart_policy",
    "restart_count",
    "name",
    "status",
    "command",
    "hostname",
    "image",
    "labels",
    "pid",
    "exit_code",
    "signal",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "tty",
    "stdin",
    "limits",
    "oom_killed",
    "timed_out",
    "output_truncated",
    "cpu_seconds",
    "memory_peak_bytes",
    "wall_seconds",
    "paused",
    "network",
}


# -- create -----------------------------------------------------------------
def test_create_answers_201_with_the_container(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "command": ["sleep", "60"],
        "name": "web",
        "hostname": "box.local",
        "env": {"A": "1"},
        "workdir": "/tmp",
    }
    response = client.post("/containers", json=body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == PUBLIC_KEYS
    assert data["id"] == ID
    assert data["status"] == "running"
    assert data["command"] == ["sleep", "60"]
    assert data["hostname"] == ID[:12]
    assert data["pid"] == 4242
    assert data["exit_code"] is None and data["signal"] is None and data["error"] is None
    assert re.fullmatch(r"2026-11-29T05:00:00(\.0+)?Z", data["created_at"])
    assert data["finished_at"] is None
    # The core's fields; other features (limits, security) have their own tests.
    (call, (request,), kwargs), *rest = fake.calls
    assert (call, request.command, kwargs, rest) == ("begin_create", ("sleep", "60"), {}, [])
    core = (request.name, request.hostname, dict(request.env), request.workdir)
    assert core == ("web", "box.local", {"A": "1"}, "/tmp")


def test_create_defaults(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers", json={"command": ["true"]}).status_code == 201
    (call, (request,), kwargs), *rest = fake.calls
    assert (call, request.command, kwargs, rest) == ("begin_create", ("true",), {}, [])
    core = (request.name, request.hostname, dict(request.env), request.workdir)
    assert core == (None, None, {}, None)
    assert request.start is True and request.limits == Limits()


def test_create_without_wait_does_not_wait(client: TestClient, fake: FakeRuntime) -> None:
    client.post("/containers", json={"command": ["true"]})
    assert [c[0] for c in fake.calls] == ["begin_create"]


def test_create_with_wait_answers_once_exited(client: TestClient, fake: FakeRuntime) -> None:
    exited = make_record("exited", exit_code=3)
    timer = threading.Timer(0.2, fake.exit.set_result, args=(exited,))
    timer.start()
    response = client.post("/containers", params={"wait": "true"}, json={"command": ["true"]})
    timer.join()
    assert response.status_code == 201
    data = response.json()
    assert (data["status"], data["exit_code"], data["pid"]) == ("exited", 3, None)
    assert data["finished_at"].startswith("2026-11-29T05:00:01.5")
    # One runtime call: the exit is watched from the launch on (Launch.exited).
    assert [c[0] for c in fake.calls] == ["begin_create"]


@pytest.mark.parametrize("wait", ["true", "false"])
def test_a_launch_that_fails_after_its_record_answers_its_error(
    client: TestClient, fake: FakeRuntime, wait: str
) -> None:
    """The launcher's refusal arrives on the launch's future (app/launching.py),
    not from the worker-thread call: the same 503, and the exit is not watched."""
    fake.launch_error = Unavailable("the launcher went away while launching container x")
    response = client.post("/containers", params={"wait": wait}, json={"command": ["true"]})
    assert response.status_code == 503
    assert "went away while launching" in response.json()["detail"]
    [launch] = fake.launches
    assert launch.exited is not None and launch.exited.cancelled()


def test_create_without_wait_drops_its_exit_waiter(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers", json={"command": ["true"]}).status_code == 201
    [launch] = fake.launches
    assert launch.exited is not None and launch.exited.cancelled()


def test_an_exec_failure_is_answered_once_exited(client: TestClient, fake: FakeRuntime) -> None:
    """Without ``wait`` too: a setup or exec failure is final only at its exit
    (runtime/launches.py ``settle``), which comes just after the reply."""
    fake.record = make_record("running", error="exec nope: not found in PATH (/bin)")
    exited = make_record("exited", exit_code=127, error="exec nope: not found in PATH (/bin)")
    timer = threading.Timer(0.2, fake.exit.set_result, args=(exited,))
    timer.start()
    response = client.post("/containers", json={"command": ["nope"]})
    timer.join()
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["exit_code"]) == ("exited", 127)


def test_exec_failure_is_still_201(client: TestClient, fake: FakeRuntime) -> None:
    fake.record = make_record("exited", exit_code=127, error="exec nope: not found in PATH (/bin)")
    response = client.post("/containers", json={"command": ["nope"]})
    assert response.status_code == 201
    assert response.json()["exit_code"] == 127
    assert response.json()["error"] == "exec nope: not found in PATH (/bin)"


def test_killed_container_shows_the_signal(client: TestClient, fake: FakeRuntime) -> None:
    fake.record = make_record("exited", exit_code=137, signal="SIGKILL")
    data = client.get(f"/containers/{ID}").json()
    assert (data["exit_code"], data["signal"]) == (137, "SIGKILL")


# -- 422s from pydantic, naming the field --------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        # {} and {"command": []}: the runtime's 422 when the image has no default
        # (tests/unit/test_imagedefaults.py, tests/e2e/test_pull.py)
        ({"command": "echo hi"}, "command"),
        ({"command": [1, 2]}, "command"),
        ({"command": ["echo", "a\u0000b"]}, "command"),
        ({"command": ["true"], "name": ""}, "name"),
        ({"command": ["true"], "name": "-lead"}, "name"),
        ({"command": ["true"], "name": "has space"}, "name"),
        ({"command": ["true"], "name": "x" * 129}, "name"),
        ({"command": ["true"], "hostname": "bad_host"}, "hostname"),
        ({"command": ["true"], "hostname": "-lead"}, "hostname"),
        ({"command": ["true"], "hostname": "trail-"}, "hostname"),
        ({"command": ["true"], "hostname": ""}, "hostname"),
        ({"command": ["true"], "hostname": "a" * 64}, "hostname"),
        ({"command": ["true"], "hostname": "a." * 32 + "b"}, "hostname"),
        ({"command": ["true"], "env": {"A=B": "x"}}, "env"),
        ({"command": ["true"], "env": {"": "x"}}, "env"),
        ({"command": ["true"], "env": {"A": "x\u0000"}}, "env"),
        ({"command": ["true"], "env": {"A": 1}}, "env"),
        ({"command": ["true"], "workdir": "relative/dir"}, "workdir"),
        ({"command": ["true"], "workdir": ""}, "workdir"),
        ({"command": ["true"], "unknown": 1}, "unknown"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(
    client: TestClient, fake: FakeRuntime, body: dict[str, Any], field: str
) -> None:
    response = client.post("/containers", json=body)
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locs), locs
    assert fake.calls == []


@pytest.mark.parametrize(
    "hostname", ["a", "a" * 63, "web-1.example.org", "a." * 31 + "bc", "0abc", "ABC"]
)
def test_valid_hostnames(client: TestClient, hostname: str) -> None:
    assert len(hostname) <= 64
    response = client.post("/containers", json={"command": ["true"], "hostname": hostname})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("name", ["a", "A.b_c-1", "9" + "x" * 127])
def test_valid_names(client: TestClient, name: str) -> None:
    response = client.post("/containers", json={"command": ["true"], "name": name})
    assert response.status_code == 201, response.text


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/containers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


# -- runtime errors -> status codes ----------------------------------------------
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("container", "nope"), 404),
        (NameInUse("web"), 409),
        (AmbiguousReference("ab", 2), 409),
        (InvalidState("container x is not running"), 409),
        (Unavailable("the launcher is gone"), 503),
        (RuntimeFailure("something broke"), 500),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/containers"),
        ("GET", "/containers"),
        ("GET", "/containers/web"),
        ("POST", "/containers/web/wait"),
        ("POST", "/containers/web/kill"),
        ("POST", "/containers/web/stop"),
        ("DELETE", "/containers/web"),
        ("GET", "/containers/web/logs"),
    ],
)
def test_runtime_errors_map_to_status_codes(
    client: TestClient,
    fake: FakeRuntime,
    error: Exception,
    status: int,
    method: str,
    path: str,
) -> None:
    fake.error = error
    body = {"command": ["true"]} if path == "/containers" and method == "POST" else None
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json() == {"detail": str(error)}


def test_invalid_argument_in_a_query_is_422_with_a_query_loc(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.error = InvalidArgument("signal", "unknown signal 'FOO'")
    response = client.post("/containers/web/kill", params={"signal": "FOO"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["query", "signal"], "msg": "unknown signal 'FOO'", "type": "value_error"}
        ]
    }


def test_invalid_argument_from_the_body_has_a_body_loc(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.error = InvalidArgument("spec", "command must not be empty")
    response = client.post("/containers", json={"command": ["true"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "spec"]


# -- lookup, list -------------------------------------------------------------------
def test_get_passes_the_reference(client: TestClient, fake: FakeRuntime) -> None:
    response = client.get("/containers/0123")
    assert response.status_code == 200
    assert response.json()["id"] == ID
    assert fake.calls == [("get", ("0123",), {})]


def test_list(client: TestClient, fake: FakeRuntime) -> None:
    response = client.get("/containers")
    assert response.status_code == 200
    data = response.json()
    assert [c["name"] for c in data] == ["web", "old"]
    assert all(set(c) == PUBLIC_KEYS for c in data)
    assert fake.calls == [("list", (), {"status": None, "name": None})]


def test_list_filters(client: TestClient, fake: FakeRuntime) -> None:
    client.get("/containers", params={"status": "exited", "name": "old"})
    assert fake.calls == [("list", (), {"status": "exited", "name": "old"})]


def test_list_with_a_bad_status_is_422(client: TestClient, fake: FakeRuntime) -> None:
    response = client.get("/containers", params={"status": "sleeping"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "status"]
    assert fake.calls == []


# -- wait -------------------------------------------------------------------------
def test_wait_answers_with_the_exited_container(client: TestClient, fake: FakeRuntime) -> None:
    fake.exit.set_result(make_record("exited", exit_code=5))
    response = client.post("/containers/web/wait")
    assert response.status_code == 200
    assert response.json()["exit_code"] == 5
    assert fake.calls == [("exit_future", ("web",), {})]


def test_wait_with_a_timeout_answers_with_the_container_as_it_is(
    client: TestClient, fake: FakeRuntime
) -> None:
    response = client.post("/containers/web/wait", params={"timeout": 0.05})
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert [c[0] for c in fake.calls] == ["exit_future", "get"]


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_wait_with_a_bad_timeout_is_422(client: TestClient, timeout: str) -> None:
    response = client.post("/containers/web/wait", params={"timeout": timeout})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "timeout"]


# -- kill, stop, delete --------------------------------------------------------------
def test_kill_defaults_to_sigkill(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers/web/kill").status_code == 200
    assert fake.calls == [("kill", ("web", "SIGKILL"), {})]


def test_kill_passes_the_signal_as_written(client: TestClient, fake: FakeRuntime) -> None:
    client.post("/containers/web/kill", params={"signal": "15"})
    assert fake.calls == [("kill", ("web", "15"), {})]


def test_stop_passes_the_grace_period(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers/web/stop", params={"timeout": 2.5}).status_code == 200
    assert client.post("/containers/web/stop").status_code == 200
    assert fake.calls == [("stop", ("web", 2.5), {}), ("stop", ("web", 10), {})]


@pytest.mark.parametrize("timeout", ["-1", "3601", "x"])
def test_stop_with_a_bad_timeout_is_422(client: TestClient, timeout: str) -> None:
    response = client.post("/containers/web/stop", params={"timeout": timeout})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "timeout"]


def test_delete(client: TestClient, fake: FakeRuntime) -> None:
    response = client.delete("/containers/web")
    assert response.status_code == 204
    assert response.content == b""
    client.delete("/containers/web", params={"force": "true"})
    assert fake.calls == [
        ("remove", ("web",), {"force": False, "volumes": False}),
        ("remove", ("web",), {"force": True, "volumes": False}),
    ]
    client.delete("/containers/web", params={"volumes": "true"})
    assert fake.calls[-1] == ("remove", ("web",), {"force": False, "volumes": True})


# -- logs -----------------------------------------------------------------------------
def test_logs(client: TestClient, fake: FakeRuntime) -> None:
    response = client.get("/containers/web/logs")
    assert response.status_code == 200
    assert response.text == "hello\nworld\n"
    assert response.headers["content-type"].startswith("text/plain")
    undated = {"timestamps": False, "since": None, "until": None}
    assert fake.calls == [
        ("logs", ("web",), {"stream": None, "tail": None, "follow": False, **undated})
    ]


def test_logs_parameters(client: TestClient, fake: FakeRuntime) -> None:
    client.get("/containers/web/logs", params={"stream": "stderr", "tail": 3, "follow": "true"})
    undated = {"timestamps": False, "since": None, "until": None}
    assert fake.calls == [
        ("logs", ("web",), {"stream": "stderr", "tail": 3, "follow": True, **undated}),
        ("exit_future", ("web",), {}),  # what ends the follow at the exit
    ]
    assert fake.exit.cancelled()  # the follow is over: its waiter is dropped


def test_logs_times_reach_the_runtime_in_ns(client: TestClient, fake: FakeRuntime) -> None:
    params = {"timestamps": "true", "since": "1795928400.25", "until": "2026-11-29T05:00:01Z"}
    assert client.get("/containers/web/logs", params=params).status_code == 200
    [(_, _, kwargs)] = fake.calls
    assert kwargs["timestamps"] is True
    assert kwargs["since"] == 1_795_928_400_250_000_000
    assert kwargs["until"] == 1_795_928_401_000_000_000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stream": "stdin"}, "stream"),
        ({"tail": -1}, "tail"),
        ({"follow": "maybe"}, "follow"),
        ({"timestamps": "maybe"}, "timestamps"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"since": "-5"}, "since"),
    ],
)
def test_logs_bad_parameters_are_422(
    client: TestClient, fake: FakeRuntime, params: dict[str, Any], field: str
) -> None:
    response = client.get("/containers/web/logs", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
    assert fake.calls == []


# -- limits, results, stats -----------------------------------------------------
def test_create_passes_only_the_limits_given(client: TestClient, fake: FakeRuntime) -> None:
    body = {"command": ["true"], "limits": {"memory_bytes": 64 << 20, "cpus": 0.5}}
    assert client.post("/containers", json=body).status_code == 201
    assert fake.calls[0][1][0].limits == Limits(memory_bytes=64 << 20, cpus=0.5)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"memory_bytes": 1024}, "memory_bytes"),
        ({"pids": 0}, "pids"),
        ({"pids": 1.5}, "pids"),
        ({"cpus": 2000}, "cpus"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 10**9}, "timeout_seconds"),
        ({"output_bytes": -1}, "output_bytes"),
        ({"nofile": 1}, "nofile"),
        ({"fsize_bytes": 0}, "fsize_bytes"),
        ({"disk": 1}, "disk"),
    ],
)
def test_limits_out_of_range_are_422(
    client: TestClient, fake: FakeRuntime, limits: dict[str, Any], field: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], "limits": limits})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "limits", field]]
    assert fake.calls == []


def test_a_limit_the_runtime_rejects_is_422_with_a_nested_loc(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.error = InvalidArgument("limits.cpus", "must be at most 2, the CPUs this machine has")
    response = client.post("/containers", json={"command": ["true"], "limits": {"cpus": 3}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "limits", "cpus"]


def test_results_and_limits_come_from_the_record(client: TestClient, fake: FakeRuntime) -> None:
    spec = dataclasses.replace(make_record().spec, limits=Limits(memory_bytes=64 << 20))
    results = {
        "oom_killed": True,
        "timed_out": False,
        "output_truncated": False,
        "cpu_seconds": 0.25,
        "memory_peak_bytes": 64 << 20,
        "wall_seconds": 1.5,
    }
    fake.record = make_record("exited", exit_code=137, spec=spec, results=results)
    data = client.get("/containers/web").json()
    assert {k: data[k] for k in results} == results
    assert data["limits"]["memory_bytes"] == 64 << 20
    assert data["limits"]["timeout_seconds"] is None


def test_results_are_null_while_running(client: TestClient) -> None:
    data = client.get("/containers/web").json()
    assert data["oom_killed"] is None and data["wall_seconds"] is None
    assert all(v is None for v in data["limits"].values())


def test_stats(client: TestClient, fake: FakeRuntime) -> None:
    response = client.get("/containers/web/stats")
    assert response.status_code == 200
    assert response.json() == {
        "memory_bytes": 1 << 20,
        "memory_peak_bytes": 2 << 20,
        "cpu_seconds": 0.5,
        "pids": 3,
    }
    assert fake.calls == [("stats", ("web",), {})]
    assert set(client.get("/openapi.json").json()["paths"]["/containers/{ref}/stats"]) == {"get"}


def test_stats_of_a_container_not_running_is_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.error = InvalidState("container web is not running (status exited)")
    assert client.get("/containers/web/stats").status_code == 409


# -- the seam, docs, health ----------------------------------------------------------
def test_dependency_override_is_the_other_seam(fake: FakeRuntime) -> None:
    app = create_app(Settings(state_dir="/nonexistent"), runtime=make_fake())
    app.dependency_overrides[get_runtime] = lambda: fake
    with TestClient(app) as c:
        assert c.get("/containers/web").status_code == 200
    assert fake.calls == [("get", ("web",), {})]


def test_openapi_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/containers"]) == {"get", "post"}
    assert set(paths["/containers/{ref}"]) == {"get", "delete"}
    for action in ("wait", "kill", "stop"):
        assert set(paths[f"/containers/{{ref}}/{action}"]) == {"post"}
    assert set(paths["/containers/{ref}/logs"]) == {"get"}


def test_docs_page_uses_local_assets(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "SwaggerUIBundle" in html
    assert "http://" not in html and "https://" not in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_a_405_lists_every_method_of_the_path(client: TestClient) -> None:
    """RFC 9110 15.5.6; Starlette alone names only the first route's methods."""
    got = client.request("OPTIONS", "/containers")
    assert got.status_code == 405
    assert set(got.headers["allow"].split(", ")) == {"GET", "POST"}
    got = client.put("/containers/abc")
    assert set(got.headers["allow"].split(", ")) == {"DELETE", "GET"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": ["true"], "tty": 1}, "tty"),
        ({"command": ["true"], "auto_remove": "yes"}, "auto_remove"),
        ({"command": ["true"], "env": {"": "x"}}, "env"),
    ],
)
def test_request_fields_take_only_what_the_schema_says(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    got = client.post("/containers", json=body)
    assert got.status_code == 422
    assert field in got.json()["detail"][0]["loc"]


def test_the_schema_states_what_the_validators_check(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ContainerCreate"]
    props = schema["properties"]
    assert props["env"]["additionalProperties"] is False
    assert "NET_ADMIN" in props["cap_add"]["items"]["enum"]
    assert props["command"]["items"]["pattern"] == "^[^\\x00]*$"
    assert props["tty"]["type"] == "boolean"


def test_the_schema_states_each_default_the_body_gets(client: TestClient) -> None:
    # Mutable defaults are made per body (fields.fresh): the schema still says them.
    props = client.get("/openapi.json").json()["components"]["schemas"]["ContainerCreate"]
    empty = ContainerCreate.model_validate({})
    for name, field in ContainerCreate.model_fields.items():
        if not field.is_required():
            # JSON Schema defaults leave out nulls inside (options.stop_timeout).
            given = json.loads(empty.model_dump_json(include={name}, exclude_none=True))
            assert props["properties"][name].get("default") == given.get(name), name
    assert props["properties"]["options"]["default"]["stop_signal"] == "SIGTERM"
    # Each body gets its own containers, never one shared default.
    other = ContainerCreate.model_validate({})
    assert empty.labels == {} and empty.labels is not other.labels
    assert empty.command is not other.command and empty.mounts is not other.mounts


def test_the_limits_shown_are_every_applied_one() -> None:
    applied = Limits(memory_bytes=1 << 26, pids=64, cpus=0.5, timeout_seconds=5, nofile=64)
    shown = limits_public(applied).model_dump()
    assert shown == dataclasses.asdict(applied)
    assert limits_public(Limits()).model_dump() == dataclasses.asdict(Limits())


@pytest.mark.parametrize(
    ("send", "loc", "kind"),
    [
        ({"content": b"", "headers": {"content-type": "application/json"}}, ["body"], "missing"),
        ({}, ["body"], "missing"),
        (
            {"content": b'{"command":', "headers": {"content-type": "application/json"}},
            ["body", 11],
            "json_invalid",
        ),
        (
            {"content": b'{"command":["a"]}', "headers": {"content-type": "text/plain"}},
            ["body"],
            "model_attributes_type",
        ),
        ({"json": [1]}, ["body"], "model_attributes_type"),
        ({"json": {"command": "true"}}, ["body", "command"], "list_type"),
        ({"json": {"command": ["a"], "env": ["A=1"]}}, ["body", "env"], "dict_type"),
        ({"json": {"command": ["a"], "mounts": {}}}, ["body", "mounts"], "list_type"),
        ({"json": {"command": ["a"], "bogus": 1}}, ["body", "bogus"], "extra_forbidden"),
        (
            {"json": {"command": ["a"], "options": {"stop_signal": 5}}},
            ["body", "options", "stop_signal"],
            "string_type",
        ),
    ],
)
def test_bad_bodies_name_the_field(
    client: TestClient, fake: FakeRuntime, send: dict[str, Any], loc: list[Any], kind: str
) -> None:
    response = client.post("/containers", **send)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert fake.calls == []


def test_an_empty_object_takes_every_default(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers", json={}).status_code == 201
    (call, (request,), kwargs), *rest = fake.calls
    assert (request.command, dict(request.labels), request.mounts, request.ports) == (
        (),
        {},
        (),
        (),
    )
    assert request.security == SecurityRequest() and request.options == Options()
