"""``POST /containers/{id}/attach``: the container's output and stdin over a hijacked socket.

The connection arrives upgraded (``Upgrade: tcp``, see app/upgrade.py) as an
ASGI websocket session of raw bytes.  Unknown containers and bad parameters
get a plain HTTP error instead of the ``101``.

Output comes from the container's log files, followed from where they end
at attach time (``logs=1`` replays them from the start first), framed as
``logs`` frames them (raw with a TTY); the stream ends when the container
has exited and all of its output is sent.  An attach to an exited container
(``docker start -a``) waits for it to be started again first.

With ``stdin=1`` and a container created with ``OpenStdin``, the client's
bytes go to its stdin (the launcher's pipe, or its pty with ``Tty``).  When
the client half-closes its side (``docker run`` without ``-i`` does so at
once; with ``-i``, at the end of its input) output keeps flowing, and the
container's stdin is closed if it was created with ``StdinOnce`` (as
``docker run -i`` creates it), so ``cat`` sees EOF.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from app.deps import RuntimeDep
from app.docker import errors, streams
from app.docker.params import parse_bool
from runtime import AttachTarget, ContainerRecord, RuntimeFailure
from runtime.api import RuntimeApi
from runtime.spec import Status

router = APIRouter(tags=["docker containers"])

#: How often an attach to an exited container looks for its restart.
RESTART_POLL = 0.05


async def _deny(ws: WebSocket, status: int, text: str) -> None:
    await ws.send_denial_response(errors.message(status, text))


class Input:
    """The client's bytes: to the container's stdin, or nowhere."""

    def __init__(self, runtime: RuntimeApi, target: AttachTarget | None, stdin_once: bool) -> None:
        self.runtime = runtime
        self.target = target
        self.stdin_once = stdin_once

    async def _forward(self, call: Callable[..., None], *args: object) -> None:
        if self.target is None:
            return
        try:
            await run_in_threadpool(call, self.target, *args)
        except RuntimeFailure:
            self.target = None  # it has exited: nothing more to deliver

    async def run(self, ws: WebSocket, gone: asyncio.Event) -> None:
        """Until the client half-closes (``b""``) or leaves."""
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    gone.set()
                    break
                data = message.get("bytes")
                if not data:
                    break  # half-closed: it still reads
                await self._forward(self.runtime.write_input, data)
        except (WebSocketDisconnect, RuntimeError):
            gone.set()
        if self.stdin_once:
            await self._forward(self.runtime.close_input)


async def until_started_again(
    runtime: RuntimeApi, record: ContainerRecord, gone: asyncio.Event
) -> None:
    """``docker start -a`` attaches to an exited container before it starts
    it again: hold the stream (its log ends were taken at attach time) until
    the container runs again, or the client leaves."""
    while not gone.is_set():
        current = await run_in_threadpool(runtime.get, record.id)
        if current.status != Status.exited or current.started_at != record.started_at:
            return
        await asyncio.sleep(RESTART_POLL)


async def pump(ws: WebSocket, chunks: Iterator[bytes], gone: asyncio.Event) -> None:
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
        stdin = parse_bool(params.get("stdin", ""))
    except ValueError as err:
        await _deny(ws, 400, f"invalid parameter: {err}")
        return
    if params.get("detachKeys"):
        await _deny(ws, 400, "unsupported option: detachKeys")
        return
    wanted = [name for name, on in (("stdout", stdout), ("stderr", stderr)) if on]

    def opened() -> tuple[ContainerRecord, Iterator[tuple[str, bytes]], AttachTarget | None]:
        # One worker-thread hop for the three: `docker run` sends its wait
        # and its start only once this attach has been answered.
        record = runtime.get(ref)
        chunks = runtime.log_chunks(record.id, wanted, None, stream, not replay, True)
        target = None
        if stdin and record.spec.stdin:
            target = runtime.attach_target("container", record.id)
        return record, chunks, target

    try:
        record, chunks, target = await run_in_threadpool(opened)
    except RuntimeFailure as err:
        await ws.send_denial_response(errors.runtime_error(err))
        return
    tty = record.spec.tty
    content_type = streams.RAW if tty else streams.MULTIPLEXED
    await ws.accept(headers=[(b"content-type", content_type.encode())])
    gone = asyncio.Event()
    stdin_once = target is not None and record.spec.stdin_once
    reader = asyncio.create_task(Input(runtime, target, stdin_once).run(ws, gone))
    try:
        if stream and record.status == Status.exited:
            await until_started_again(runtime, record, gone)
        await pump(ws, streams.encode(chunks, tty), gone)
    except WebSocketDisconnect:
        return
    finally:
        if not reader.done():
            reader.cancel()
    await ws.close()
