"""``Upgrade: tcp``: Docker's hijacked attach streams, served by uvicorn.

Docker's attach (``POST /containers/{id}/attach`` with ``Connection:
Upgrade``, ``Upgrade: tcp``) answers ``101 UPGRADED`` and then uses the bare
TCP connection both ways: the client's bytes are the container's stdin, the
container's output follows without any framing of HTTP's.  The ``docker``
CLI refuses anything but a 101 here.

ASGI has no "hijack", and uvicorn hands a request with an unknown upgrade
token to the app as a plain request, with no way to answer 101.  So this
module teaches uvicorn's h11 protocol one more upgrade, through the same
door its WebSocket support uses (``_should_upgrade`` and
``handle_websocket_upgrade``), and presents the upgraded connection to the
app as an ASGI *websocket* session whose messages carry raw bytes:

    websocket.connect                 the upgrade request arrived
    websocket.accept       (app)      -> ``101 UPGRADED`` (+ the app's headers)
    websocket.http.response.* (app)   -> a normal HTTP answer instead (404, ...), then close
    websocket.close        (app)      -> before accept: ``403``; after: close the socket
    websocket.receive  {bytes}        what the client sent; ``b""`` once it half-closed
                                      its side (shutdown(SHUT_WR)): the socket stays
                                      writable, output keeps flowing
    websocket.send     {bytes} (app)  bytes written as they are
    websocket.disconnect              the connection is gone

The upgrade request's own body (exec start's JSON) is in
``scope["extensions"][BODY]``.

So routing, dependencies and the denial response are FastAPI's own
(``@router.websocket``) and nothing of the protocol leaks into handlers.
The hooks are uvicorn internals: pyproject.toml pins uvicorn's minor
version and tests/unit/test_upgrade.py checks the pin holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mydocker.upgrade")

TCP = b"tcp"
#: The scope extension that holds the upgrade request's body (at most ``MAX_BODY``).
BODY = "mydocker.upgrade_body"
MAX_BODY = 64 << 10
Message = dict[str, Any]


class ClientDisconnected(OSError):
    """A send on a connection the client has closed (ASGI asks for an OSError)."""


class TcpUpgradeProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus ``Upgrade: tcp`` handed to the app as above."""

    def _should_upgrade(self) -> bool:
        if self._get_upgrade() == TCP:
            return True
        return super()._should_upgrade()

    _tcp_request: h11.Request | None = None
    _tcp_body = b""

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        if self._get_upgrade() != TCP:
            super().handle_websocket_upgrade(event)
            return
        self._tcp_request = event
        self._tcp_body = b""
        self._finish_tcp_upgrade()

    def data_received(self, data: bytes) -> None:
        if self._tcp_request is None:
            super().data_received(data)
            return
        self.conn.receive_data(data)  # the rest of the upgrade request's body
        self._finish_tcp_upgrade()

    def _finish_tcp_upgrade(self) -> None:
        """Consume the request's body (Docker's exec start sends a small JSON
        one; the handler reads it from the scope, ``BODY``), then switch: h11
        then pauses, holding what followed the request as ``trailing_data``,
        the first bytes of the raw stream."""
        request = self._tcp_request
        assert request is not None
        while True:
            try:
                next_event = self.conn.next_event()
            except h11.RemoteProtocolError:
                self._tcp_request = None
                self.send_400_response("Invalid HTTP request received.")
                return
            if next_event is h11.NEED_DATA:
                return  # data_received brings the rest
            if next_event is h11.PAUSED:
                break
            if isinstance(next_event, h11.Data) and len(self._tcp_body) < MAX_BODY:
                self._tcp_body += bytes(next_event.data)
        self._tcp_request = None
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        stream = RawStream(self, request)
        stream.scope["extensions"][BODY] = self._tcp_body[:MAX_BODY]
        self.transport.set_protocol(stream)
        stream.begin(self.conn.trailing_data[0])


class RawStream(asyncio.Protocol):
    """One upgraded connection, driven by one ASGI websocket session."""

    def __init__(self, http: TcpUpgradeProtocol, request: h11.Request) -> None:
        self.conn = http.conn
        self.transport = http.transport
        self.connections = http.connections
        self.tasks = http.server_state.tasks
        self.app = http.app
        self.loop = http.loop
        self.scope: dict[str, Any] = {
            **http.scope,
            "type": "websocket",
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        self.scope.pop("method", None)
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.connected_sent = False
        self.accepted = False
        self.closed = False  # by the app (close or denial) or by the client
        self.gone = False  # the connection is lost
        self.writable = asyncio.Event()
        self.writable.set()
        self._denial_status = 500
        self._denial_headers: list[tuple[bytes, bytes]] = []
        self._denial_body = b""

    def begin(self, initial: bytes) -> None:
        # uvicorn's shutdown calls .shutdown() on each member; that is all it needs.
        self.connections.add(self)  # type: ignore[arg-type]
        if initial:
            self.data_received(initial)
        task = self.loop.create_task(self._run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except BaseException:
            log.exception("exception in an upgraded connection's handler")
            if not self.accepted and not self.closed:
                self._answer(500, [(b"content-type", b"text/plain")], b"Internal Server Error")
        finally:
            if not self.gone:
                self.transport.close()

    # -- asyncio.Protocol -------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "bytes": data})
        if self.incoming.qsize() > 16:
            self.transport.pause_reading()  # resumed as the app catches up

    def eof_received(self) -> bool:
        self.incoming.put_nowait({"type": "websocket.receive", "bytes": b""})
        return True  # keep the transport open for writing (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.connections.discard(self)
        self.writable.set()
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1006})

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def shutdown(self) -> None:
        """Server shutdown (uvicorn calls it on every connection)."""
        self.transport.close()

    # -- ASGI -------------------------------------------------------------
    async def receive(self) -> Message:
        if not self.connected_sent:
            self.connected_sent = True
            return {"type": "websocket.connect"}
        message = await self.incoming.get()
        if self.incoming.qsize() <= 4 and not self.gone:
            self.transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.gone:
            raise ClientDisconnected("the client closed the connection")
        if kind == "websocket.accept" and not self.accepted and not self.closed:
            self.accepted = True
            headers = [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
            headers += list(message.get("headers") or [])
            self.transport.write(
                self.conn.send(
                    h11.InformationalResponse(status_code=101, headers=headers, reason=b"UPGRADED")
                )
                or b""
            )
        elif kind == "websocket.send" and self.accepted and not self.closed:
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            if data:
                self.transport.write(data)
                await self.writable.wait()
        elif kind == "websocket.close" and not self.closed:
            self.closed = True
            if not self.accepted:
                self._answer(403, [(b"content-type", b"text/plain")], b"Forbidden")
            self.transport.close()
        elif kind == "websocket.http.response.start" and not self.accepted and not self.closed:
            self._denial_status = int(message["status"])
            self._denial_headers = list(message.get("headers") or [])
            self._denial_body = b""
        elif kind == "websocket.http.response.body" and not self.accepted and not self.closed:
            self._denial_body += message.get("body", b"")
            if not message.get("more_body", False):
                self.closed = True
                self._answer(self._denial_status, self._denial_headers, self._denial_body)
                self.transport.close()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an upgraded connection")

    def _answer(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> None:
        """A plain HTTP response that declines the upgrade (h11 allows one)."""
        headers = [
            (name, value)
            for name, value in headers
            if name.lower() not in (b"content-length", b"connection")
        ]
        headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        out = self.conn.send(h11.Response(status_code=status, headers=headers)) or b""
        out += self.conn.send(h11.Data(data=body)) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        self.transport.write(out)
