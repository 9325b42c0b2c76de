"""The door of the API: a pure ASGI middleware in front of every route.

In order, for each HTTP request:

1. the bearer token (when the service has one): every path but ``/health``
   and the console's static shell (``GET /ui/...``: no data in it, and it
   must load to ask for the token) demands ``Authorization: Bearer
   <token>``, compared in constant time (``hmac.compare_digest``); anything
   else is ``401`` with a fixed body, so nothing about containers, routes or
   even the OpenAPI document leaks.  A browser cannot set headers on a
   WebSocket, so a WebSocket may carry the token as a subprotocol instead
   (``mydocker.token.<base64url of the token>``, offered with ``mydocker``,
   which the accept then selects: Kubernetes' ``base64url.bearer.
   authorization.k8s.io.<token>`` does the same); the token protocol is
   taken out of the scope, so no route sees or echoes it;
2. the body size: a ``Content-Length`` above the cap is ``413`` before
   anything is read; a chunked body is counted while it streams in, and the
   request fails with ``413`` as soon as it passes the cap, so the service
   never holds more than the cap (image uploads under ``/images`` and
   archives put into a container have a cap of their own);
3. the body time: a client that takes longer than ``body_timeout`` seconds
   to send its body gets ``408`` (a slow sender cannot hold a worker).

It is plain ASGI rather than ``BaseHTTPMiddleware``, so streaming bodies
and responses pass through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException

from app.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths that answer without a token: a liveness probe only.
OPEN_PATHS = frozenset({"/health"})
#: The web console's static files (app/ui), open to GET and HEAD.
OPEN_PREFIX = "/ui"
#: The WebSocket subprotocol a browser selects, and the prefix of the one
#: that carries its token (RFC 6455 4.1: protocols are tokens, hence base64url).
WS_PROTOCOL = "mydocker"
WS_TOKEN_PROTOCOL = "mydocker.token."
#: Image uploads (ours and Docker's, with or without its /v1.xx prefix).
#: Image uploads and archives put into a container (docker cp) take the upload cap.
UPLOAD_PATH = re.compile(r"^(/v[0-9.]+)?/(images(/|$)|containers/[^/]+/archive$)")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s")


async def _respond(
    send: Send,
    status: int,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    prefix: str = "",
) -> None:
    # "message" too: it is the field Docker clients print (docs/docker-compat.md).
    body = json.dumps({"detail": detail, "message": detail}).encode()
    await send(
        {
            "type": f"{prefix}http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": f"{prefix}http.response.body", "body": body})


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        max_body: int,
        max_upload: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.max_body = max_body
        self.max_upload = max_upload
        self.body_timeout = body_timeout

    def _authorized(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if self.expected is None or _open(scope):
            return True
        return hmac.compare_digest(headers.get(b"authorization", b""), self.expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["type"] == "websocket":
            scope, send, token = _protocol_token(scope, send)
            if token is not None:
                headers.setdefault(b"authorization", b"Bearer " + token)
            if self._authorized(scope, headers):
                await self.app(scope, receive, send)
            elif "websocket.http.response" in (scope.get("extensions") or {}):
                # The ASGI denial-response extension: a real 401 (app/upgrade.py has it).
                await _respond(send, 401, "unauthorized", prefix="websocket.")
            else:
                # ASGI: a close before accept is an HTTP 403 to the client.
                await send({"type": "websocket.close", "code": 1008})
            return
        if not self._authorized(scope, headers):
            # RFC 6750 3: say which scheme, and nothing else.
            await _respond(
                send, 401, "unauthorized", [(b"www-authenticate", b'Bearer realm="mydocker"')]
            )
            return
        limit = self._limit(scope)
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _respond(send, 400, "invalid Content-Length")
                return
            if declared > limit:
                await _respond(send, 413, f"request body larger than {limit} bytes")
                return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._receive(receive, limit), guarded_send)
        except (BodyTooLarge, BodyTimeout) as err:
            # Raised by a route that read the body itself; FastAPI's own body
            # parsing turns it into the response already.
            if started:
                raise
            await _respond(send, err.status_code, err.detail)

    def _limit(self, scope: Scope) -> int:
        if scope["method"] in ("POST", "PUT") and UPLOAD_PATH.match(scope["path"]):
            return self.max_upload
        return self.max_body

    def _receive(self, receive: Receive, limit: int) -> Receive:
        received = 0
        done = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def guarded() -> Message:
            nonlocal received, done
            if done:
                # The body is complete; what follows is http.disconnect, which
                # streaming responses wait for as long as they stream.
                return await receive()
            try:
                # A timer on this task, not wait_for's task around receive():
                # a third of the cost, on every request with a body.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return guarded


def _open(scope: Scope) -> bool:
    path: str = scope["path"]
    if path in OPEN_PATHS:
        return True
    # ".." never reaches a route here (StaticFiles stays in its directory),
    # but an open prefix should not even look like a way out of itself.
    return (
        scope["type"] == "http"
        and scope["method"] in ("GET", "HEAD")
        and (path == OPEN_PREFIX or path.startswith(f"{OPEN_PREFIX}/"))
        and "/.." not in path
    )


def _protocol_token(scope: Scope, send: Send) -> tuple[Scope, Send, bytes | None]:
    """The token a WebSocket offers as a subprotocol, taken out of the scope;
    ``send`` then makes the accept select ``mydocker`` (a browser fails the
    handshake unless the server selects one of the protocols it offered)."""
    offered: list[str] = list(scope.get("subprotocols") or [])
    carriers = [p for p in offered if p.startswith(WS_TOKEN_PROTOCOL)]
    if not carriers:
        return scope, send, None
    encoded = carriers[0][len(WS_TOKEN_PROTOCOL) :]
    try:
        token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        token = b""  # then no token matches it
    rest = [p for p in offered if not p.startswith(WS_TOKEN_PROTOCOL)]

    async def selecting_send(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            if WS_PROTOCOL in rest:
                message = {**message, "subprotocol": WS_PROTOCOL}
        await send(message)

    return {**scope, "subprotocols": rest}, selecting_send, token


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        Guard,
        token=settings.token,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        body_timeout=settings.body_timeout,
    )
