"""app.upgrade: ``Upgrade: tcp`` through a real uvicorn server, over a real socket.

Also the pin: the protocol subclasses uvicorn internals, so the installed
uvicorn must be the minor version pyproject.toml pins, and still have the
two hooks we override.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.upgrade import BODY, TcpUpgradeProtocol

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_uvicorn_is_the_pinned_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("uvicorn")]
    assert pins, "uvicorn is not pinned"
    low, high = re.fullmatch(r"uvicorn>=([\d.]+),<([\d.]+)", pins[0]).groups()  # type: ignore[union-attr]
    installed = tuple(int(p) for p in version("uvicorn").split(".")[:2])
    assert tuple(int(p) for p in low.split(".")[:2]) <= installed
    assert installed < tuple(int(p) for p in high.split(".")[:2])


def test_the_hooks_we_override_exist() -> None:
    for hook in ("_should_upgrade", "_get_upgrade", "handle_websocket_upgrade"):
        assert callable(getattr(H11Protocol, hook, None)), hook
    assert issubclass(TcpUpgradeProtocol, H11Protocol)


async def echo(ws: WebSocket) -> None:
    """Upper-cases what it reads; after the client's half-close it still writes."""
    if ws.query_params.get("deny"):
        await ws.send_denial_response(JSONResponse({"message": "no such thing"}, 404))
        return
    await ws.accept(headers=[(b"content-type", b"application/vnd.docker.raw-stream")])
    if ws.query_params.get("body"):
        await ws.send_bytes(b"body=" + ws.scope["extensions"][BODY] + b";")
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if not data:
            break
        await ws.send_bytes(data.upper())
    await ws.send_bytes(b"after-eof")
    await ws.close()


async def plain(request: object) -> PlainTextResponse:
    return PlainTextResponse("plain")


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    app = Starlette(
        routes=[WebSocketRoute("/attach", echo), Route("/plain", plain, methods=["POST"])]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=TcpUpgradeProtocol, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        thread.join(0.01)
    yield sock.getsockname()[1]
    srv.should_exit = True
    thread.join(10)


def request(port: int, path: str, upgrade: bool = True) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    headers = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else ""
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{headers}\r\n".encode())
    return conn


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_upgrade_answers_101_and_streams_both_ways(server: int) -> None:
    with request(server, "/attach") as conn:
        head, rest = read_head(conn)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        assert b"upgrade: tcp" in head.lower()
        assert b"content-type: application/vnd.docker.raw-stream" in head.lower()
        conn.sendall(b"hello")
        got = rest
        while got != b"HELLO":
            got += conn.recv(65536)
        conn.shutdown(socket.SHUT_WR)  # what `docker run` without -i does
        assert read_all(conn) == b"after-eof"


def test_a_denial_is_a_plain_http_answer(server: int) -> None:
    with request(server, "/attach?deny=1") as conn:
        data = read_all(conn)
    assert data.startswith(b"HTTP/1.1 404 ")
    assert data.endswith(b'{"message":"no such thing"}')


def test_no_route_for_the_upgrade_is_a_403(server: int) -> None:
    with request(server, "/nowhere") as conn:
        assert read_all(conn).startswith(b"HTTP/1.1 403 ")


def test_plain_requests_are_untouched(server: int) -> None:
    with request(server, "/plain", upgrade=False) as conn:
        head, body = read_head(conn)
        assert head.startswith(b"HTTP/1.1 200 ")
        while body != b"plain":
            body += conn.recv(65536)


def test_an_upgrade_request_with_a_body_in_two_pieces(server: int) -> None:
    """Docker's exec start is an upgrade with a JSON body; it may come late, and
    it reaches the handler (its ``Tty`` decides the framing)."""
    body = b'{"Detach": false, "Tty": false}'
    with socket.create_connection(("127.0.0.1", server), timeout=10) as conn:
        conn.sendall(
            b"POST /attach?body=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
            b"Upgrade: tcp\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:5]
        )
        time.sleep(0.1)
        conn.sendall(body[5:])
        head, rest = read_head(conn)
        assert head.startswith(b"HTTP/1.1 101 ")
        conn.sendall(b"x")
        while rest != b"body=" + body + b";X":
            rest += conn.recv(65536)
        conn.shutdown(socket.SHUT_WR)
        assert read_all(conn) == b"after-eof"
