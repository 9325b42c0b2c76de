"""``POST /containers/{id}/attach``: the container's output (and stdin) over a hijacked socket.

The connection arrives upgraded (``Upgrade: tcp``, see app/upgrade.py) as an
ASGI websocket session of raw bytes.  Unknown containers and bad parameters
get a plain HTTP error instead of the ``101``.

Output comes from the container's log files, followed from where they end
at attach time (``logs=1`` replays them from the start first), framed as
``logs`` frames them; the stream ends when the container has exited and
all of its output is sent.  The client's bytes are read only to notice its
half-close (``docker run`` without ``-i`` shuts its side at once) or its
departure: output keeps flowing after a half-close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from app.deps import RuntimeDep
from app.docker import errors, streams
from app.docker.params import parse_bool
from runtime import RuntimeFailure

router = APIRouter(tags=["docker containers"])


async def _deny(ws: WebSocket, status: int, text: str) -> None:
    await ws.send_denial_response(errors.message(status, text))


async def _drain_input(ws: WebSocket, gone: asyncio.Event) -> None:
    """Read until the client half-closes (``b""``) or leaves."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                gone.set()
                return
            if not message.get("bytes"):
                return  # half-closed: it still reads
    except (WebSocketDisconnect, RuntimeError):
        gone.set()


async def _pump(ws: WebSocket, chunks: Iterator[bytes], gone: asyncio.Event) -> None:
    async for chunk in streams.in_threadpool(chunks):
        if gone.is_set():
            return
        if chunk:
            await ws.send_bytes(chunk)


@router.websocket("/containers/{ref}/attach")
async def attach_container(ws: WebSocket, ref: str, runtime: RuntimeDep) -> None:
    params = ws.query_params
    try:
        stream = parse_bool(params.get("stream", ""))
        replay = parse_bool(params.get("logs", ""))
        stdout = parse_bool(params.get("stdout", ""))
        stderr = parse_bool(params.get("stderr", ""))
        parse_bool(params.get("stdin", ""))
    except ValueError as err:
        await _deny(ws, 400, f"invalid parameter: {err}")
        return
    if params.get("detachKeys"):
        await _deny(ws, 400, "unsupported option: detachKeys")
        return
    try:
        record = await run_in_threadpool(runtime.get, ref)
        wanted = [name for name, on in (("stdout", stdout), ("stderr", stderr)) if on]
        chunks = await run_in_threadpool(
            runtime.log_chunks,
            record.id,
            wanted,
            None,
            stream,
            not replay,
            True,
        )
    except RuntimeFailure as err:
        await _deny(ws, errors.status_for(err), str(err))
        return
    tty = bool(record.spec.get("tty"))
    content_type = streams.RAW if tty else streams.MULTIPLEXED
    await ws.accept(headers=[(b"content-type", content_type.encode())])
    gone = asyncio.Event()
    reader = asyncio.create_task(_drain_input(ws, gone))
    try:
        await _pump(ws, streams.encode(chunks, tty), gone)
    except WebSocketDisconnect:
        return
    finally:
        reader.cancel()
    await ws.close()
