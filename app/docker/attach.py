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
``docker run -i`` creates it), so ``cat`` sees EOF.  With a TTY, the detach
keys (``detachKeys``, default ctrl-p,ctrl-q; app/docker/detach.py) end the
attach and leave the container running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from app.deps import RuntimeDep
from app.docker import detach, errors, streams
from app.docker.errors import DockerError
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
    """The client's bytes: to the container's stdin, or nowhere; with ``escape``
    (a TTY's detach keys, app/docker/detach.py) until the client detaches."""

    def __init__(
        self,
        runtime: RuntimeApi,
        target: AttachTarget | None,
        stdin_once: bool,
        escape: detach.Escape | None = None,
    ) -> None:
        self.runtime = runtime
        self.target = target
        self.stdin_once = stdin_once
        self.escape = escape

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
                if data is None and message.get("text") is not None:
                    data = message["text"].encode()  # a WebSocket client's text message
                if not data:
                    break  # half-closed: it still reads
                detached = False
                if self.escape is not None:
                    data, detached = self.escape.feed(data)
                if data:
                    await self._forward(self.runtime.write_input, data)
                if detached:
                    # The attach ends, the container goes on: its stdin stays open.
                    gone.set()
                    return
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


async def _stdin_only(runtime: RuntimeApi, container_id: str, reader: asyncio.Task[None]) -> None:
    """No output asked for: the session lasts while the client writes (until it
    detaches, half-closes or leaves) and the container runs, as Docker's does."""
    exited = asyncio.wrap_future(await run_in_threadpool(runtime.exit_future, container_id))
    try:
        either: set[asyncio.Future[Any]] = {reader, exited}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()


@router.websocket("/containers/{ref}/attach")
async def attach_container(ws: WebSocket, ref: str, runtime: RuntimeDep) -> None:
    await _attach(ws, ref, runtime, hijacked=True)


@router.websocket("/containers/{ref}/attach/ws")
async def attach_websocket(ws: WebSocket, ref: str, runtime: RuntimeDep) -> None:
    """Docker's WebSocket attach (RFC 6455; binary messages, as Docker sends them
    since API 1.28): the same streams, never framed (moby's MuxStreams is false
    there), stdin from the client's messages (docker-py's ``attach_socket(ws=True)``)."""
    await _attach(ws, ref, runtime, hijacked=False)


async def _attach(ws: WebSocket, ref: str, runtime: RuntimeApi, hijacked: bool) -> None:
    params = ws.query_params
    try:
        stream, replay, stdout, stderr, stdin = (
            parse_bool(params.get(name, ""))
            for name in ("stream", "logs", "stdout", "stderr", "stdin")
        )
    except ValueError as err:
        await _deny(ws, 400, f"invalid parameter: {err}")
        return
    try:
        sequence = detach.keys(params.get("detachKeys") or detach.DEFAULT)
    except DockerError as err:
        await _deny(ws, err.status, err.message)
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
    raw = tty or not hijacked
    if hijacked:
        content_type = streams.RAW if raw else streams.MULTIPLEXED
        await ws.accept(headers=[(b"content-type", content_type.encode())])
    else:
        await ws.accept()
    gone = asyncio.Event()
    stdin_once = target is not None and record.spec.stdin_once
    escape = detach.Escape(sequence) if tty else None
    reader = asyncio.create_task(Input(runtime, target, stdin_once, escape).run(ws, gone))
    try:
        if stream and record.status == Status.exited:
            await until_started_again(runtime, record, gone)
        if wanted or not stream:
            await pump(ws, streams.encode(chunks, raw), gone)
        else:
            await _stdin_only(runtime, record.id, reader)
    except WebSocketDisconnect:
        return
    finally:
        if not reader.done():
            reader.cancel()
    await ws.close()
