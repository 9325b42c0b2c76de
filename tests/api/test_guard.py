"""app/guard.py over a fake runtime: the token, body caps and body time."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse, WebSocketTestSession

from app.config import Settings
from app.guard import Guard
from app.main import create_app
from runtime import LimitReached
from runtime.spec import SecurityRequest
from tests.fakes.runtime import FakeRuntime

TOKEN = "s3cret-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Routes outside the OpenAPI document: the docs, and the Docker Engine API subset.
EXTRA_ROUTES = [
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/_ping"),
    ("GET", "/version"),
    ("GET", "/v1.43/containers/json"),
    ("POST", "/v1.43/containers/create"),
    ("POST", "/containers/create"),
    ("POST", "/v1.43/images/create"),
    ("GET", "/v1.43/containers/x/attach"),
]


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


def make_client(fake: FakeRuntime, **settings: Any) -> TestClient:
    app = create_app(Settings(state_dir="/nonexistent", **settings), runtime=fake)
    return TestClient(app)


@pytest.fixture
def client(fake: FakeRuntime) -> Iterator[TestClient]:
    with make_client(fake, token=TOKEN, max_body_bytes=4096, max_upload_bytes=8192) as c:
        yield c


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, ids filled in."""
    spec = client.get("/openapi.json", headers=AUTH).json()
    return [
        (method.upper(), path.replace("{ref}", "web"))
        for path, item in spec["paths"].items()
        for method in item
    ]


def test_every_route_but_health_demands_the_token(client: TestClient, fake: FakeRuntime) -> None:
    listed = routes(client)
    assert ("POST", "/containers") in listed and len(listed) >= 8
    for method, path in listed + EXTRA_ROUTES:
        if path == "/health":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"detail": "unauthorized", "message": "unauthorized"}
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert fake.calls == []  # nothing reached the runtime
    assert client.get("/health").status_code == 200


def test_unknown_paths_are_401_too(client: TestClient) -> None:
    # A 404 would tell a stranger which routes exist.
    assert client.get("/nope").status_code == 401
    assert client.get("/nope", headers=AUTH).status_code == 404


def test_the_right_token_goes_through(client: TestClient, fake: FakeRuntime) -> None:
    assert client.get("/containers", headers=AUTH).status_code == 200
    assert client.post("/containers", json={"command": ["true"]}, headers=AUTH).status_code == 201
    assert [call[0] for call in fake.calls] == ["list", "begin_create"]


def test_no_token_configured_means_open(fake: FakeRuntime) -> None:
    with make_client(fake) as c:
        assert c.get("/containers").status_code == 200


def test_declared_oversize_body_is_413(client: TestClient, fake: FakeRuntime) -> None:
    body = b'{"command": ["' + b"a" * 5000 + b'"]}'
    response = client.post(
        "/containers", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert fake.calls == []


def test_streamed_oversize_body_is_413(client: TestClient, fake: FakeRuntime) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b'{"command": ["'
        for _ in range(100):
            sent.append(1)
            yield b"a" * 1000
        yield b'"]}'

    response = client.post(
        "/containers", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert fake.calls == []


def test_uploads_have_their_own_cap(client: TestClient) -> None:
    # Under the cap the route answers (422: no ?name=), over it the guard
    # answers 413 first.
    small = client.post("/images", content=b"x" * 6000, headers=AUTH)
    assert small.status_code == 422
    big = client.post("/images", content=b"x" * 9000, headers=AUTH)
    assert big.status_code == 413


def test_max_containers_is_429_with_retry_after(client: TestClient, fake: FakeRuntime) -> None:
    fake.error = LimitReached("2 containers are running", retry_after=1)
    response = client.post("/containers", json={"command": ["true"]}, headers=AUTH)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


def test_slow_body_is_408() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await receive()  # never comes
        raise AssertionError("not reached")

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    responses: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        responses.append(message)

    guard = Guard(app, token=None, max_body=100, max_upload=100, body_timeout=0.05)
    scope = {"type": "http", "path": "/containers", "method": "POST", "headers": []}
    asyncio.run(guard(scope, receive, send))
    assert responses[0]["status"] == 408


# -- the security fields of POST /containers ----------------------------------
def test_security_fields_reach_the_runtime(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "command": ["true"],
        "user": "1000:50",
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["cap_chown"],
        "seccomp": "unconfined",
        "no_new_privileges": False,
        "userns": True,
    }
    assert client.post("/containers", json=body, headers=AUTH).status_code == 201
    security = fake.calls[0][1][0].security
    assert security == SecurityRequest(
        user="1000:50",
        cap_add=("NET_ADMIN",),
        cap_drop=("cap_chown",),
        seccomp="unconfined",
        no_new_privileges=False,
        userns=True,
    )


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("cap_add", ["NET_ADMIN", "FLY"], "FLY"),
        ("cap_drop", ["CAP_NOPE"], "CAP_NOPE"),
        ("user", "root", "user"),
        ("user", "1000:", "user"),
        ("seccomp", "relaxed", "seccomp"),
    ],
)
def test_bad_security_fields_are_422(
    client: TestClient, field: str, value: object, needle: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], field: value}, headers=AUTH)
    assert response.status_code == 422
    assert needle in response.text and field in str(response.json()["detail"][0]["loc"])


def test_argv_and_env_size_is_capped(fake: FakeRuntime) -> None:
    with make_client(fake, max_body_bytes=8 << 20) as c:
        one_too_long = c.post("/containers", json={"command": ["echo", "a" * (128 * 1024)]})
        assert one_too_long.status_code == 422 and "argument 1" in one_too_long.text
        many = {f"V{i}": "x" * 100_000 for i in range(12)}
        too_much = c.post("/containers", json={"command": ["true"], "env": many})
        assert too_much.status_code == 422 and "bytes together" in too_much.text
        assert fake.calls == []


def test_docker_routes_work_with_the_token(client: TestClient) -> None:
    assert client.get("/_ping", headers=AUTH).status_code == 200
    assert client.get("/_ping").status_code == 401


def attachable(tmp_path: Path) -> FakeRuntime:
    """A fake whose attach replays ``earlier output`` from real log files."""
    fake = FakeRuntime()
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    stdout.write_bytes(b"earlier output\n")
    fake.attach_paths = (str(stdout), str(stderr))
    return fake


def accepted(ws: WebSocketTestSession) -> str | None:
    """The subprotocol the app accepted (starlette's attribute is typed as
    its initial ``None``, so mypy would take any other value as unreachable)."""
    return ws.accepted_subprotocol


def _protocol(token: str) -> str:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return f"mydocker.token.{encoded}"


def test_websocket_token_as_a_subprotocol(tmp_path: Path) -> None:
    # Browsers cannot set headers on a WebSocket (the console's terminal).
    fake = attachable(tmp_path)
    app = create_app(Settings(state_dir="/nonexistent", token=TOKEN), runtime=fake)
    with TestClient(app) as c:
        with c.websocket_connect(
            "/containers/web/attach", subprotocols=["mydocker", _protocol(TOKEN)]
        ) as ws:
            assert accepted(ws) == "mydocker"  # never the token itself
            assert ws.receive_bytes() == b"earlier output\n"
        with c.websocket_connect("/containers/web/attach", headers=AUTH) as ws:
            assert accepted(ws) is None
            assert ws.receive_bytes() == b"earlier output\n"
        for offered in (
            [],
            ["mydocker"],
            ["mydocker", _protocol("not-the-token")],
            ["mydocker", "mydocker.token.!!!"],
            ["mydocker", "mydocker.token."],
        ):
            with pytest.raises(WebSocketDenialResponse) as denied:
                with c.websocket_connect("/containers/web/attach", subprotocols=offered):
                    pass
            assert denied.value.status_code == 401, offered
    assert [op for op, *_ in fake.calls].count("attach_target") == 2


def test_websocket_token_protocol_without_a_configured_token(tmp_path: Path) -> None:
    # A console that kept a token from before still gets its terminal.
    app = create_app(Settings(state_dir="/nonexistent"), runtime=attachable(tmp_path))
    with TestClient(app) as c:
        with c.websocket_connect(
            "/containers/web/attach", subprotocols=["mydocker", _protocol("old")]
        ) as ws:
            assert accepted(ws) == "mydocker"
            assert ws.receive_bytes() == b"earlier output\n"
