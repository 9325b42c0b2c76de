"""The attach WebSocket: a container's (or exec's) terminal over one socket.

Server -> client
    binary frames   output: first what the logs hold (``logs=true``), then what
                    is appended, read from the same files ``/logs`` serves, so
                    a client that reconnects misses nothing and several
                    clients all see everything
    text frames     JSON: ``{"type": "exit", "exit_code", "signal", "error"}``
                    once it has exited (then the server closes, code 1000);
                    ``{"type": "error", "message"}`` for a refused message
Client -> server
    binary frames   input bytes for its stdin (the pty with ``tty``)
    text frames     a JSON control message: ``{"type": "resize", "rows", "cols"}``
                    (TIOCSWINSZ), ``{"type": "eof"}`` (close stdin; ^D on a tty);
                    any other text is input too, with a newline added in
                    ``lines`` mode

``split=true`` tags output: every binary frame starts with one byte, 1 for
stdout and 2 for stderr (with a tty everything is stdout), so a client can
keep the two apart, as ``mydocker run`` without ``-t`` does.

``lines=true`` is for line-based clients (``python -m websockets``): output
comes as text frames (UTF-8, invalid bytes replaced) and each text frame is
one line of input.  Closing the socket detaches: the container keeps
running.  Refusals close the socket with 4404 (no such container or exec) or
4409 (conflict), the reason saying why.

Input goes to the launcher as ``write`` ops (it owns the pty master and the
stdin pipe; runtime/terminal.py), so attach works the same after the API
restarts, and output is followed in the log files, which the launcher fills
whether or not anybody is attached.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from app.errors import status_for
from runtime import AttachTarget
from runtime.api import RuntimeApi
from runtime.errors import RuntimeFailure
from runtime.logs import Cursor

#: How often the log files are polled for new output while attached.
POLL_SECONDS = 0.02


async def serve(
    websocket: WebSocket,
    runtime: RuntimeApi,
    kind: str,
    ref: str,
    logs: bool,
    lines: bool,
    split: bool = False,
) -> None:
    await websocket.accept()
    try:
        target = await run_in_threadpool(runtime.attach_target, kind, ref)
    except RuntimeFailure as err:
        await websocket.close(code=4000 + status_for(err), reason=str(err)[:120])
        return
    session = _Session(websocket, runtime, target, lines, split)
    await session.run(logs)


class _Session:
    def __init__(
        self,
        websocket: WebSocket,
        runtime: RuntimeApi,
        target: AttachTarget,
        lines: bool,
        split: bool,
    ) -> None:
        self.websocket = websocket
        self.runtime = runtime
        self.target = target
        self.lines = lines
        self.split = split and not lines
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    async def run(self, replay: bool) -> None:
        output = asyncio.create_task(self._output(Cursor(self.target.log_paths, replay)))
        reader = asyncio.create_task(self._input())
        done, pending = await asyncio.wait({output, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in done:
            if (err := task.exception()) is not None and not isinstance(
                err, WebSocketDisconnect | RuntimeError
            ):
                raise err

    async def _output(self, cursor: Cursor) -> None:
        exited = asyncio.wrap_future(self.target.done)
        try:
            while True:
                # Look at `exited` before reading: output written before the
                # exit is then always in a read that follows.
                finished = exited.done()
                chunks = cursor.read_streams()
                for index, data in chunks:
                    await self._send_output(index, data)
                if chunks:
                    continue
                if finished:
                    break
                else:
                    await asyncio.wait({exited}, timeout=POLL_SECONDS)
        finally:
            cursor.close()
        record = exited.result()
        await self.websocket.send_text(
            json.dumps(
                {
                    "type": "exit",
                    "exit_code": record.exit_code,
                    "signal": record.signal,
                    "error": record.error,
                }
            )
        )
        await self.websocket.close(code=1000)

    async def _send_output(self, index: int, data: bytes) -> None:
        if self.split:
            await self.websocket.send_bytes(bytes([index + 1]) + data)
        elif self.lines:
            text = self.decoder.decode(data)
            if text:
                await self.websocket.send_text(text)
        else:
            await self.websocket.send_bytes(data)

    async def _input(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            try:
                if data is not None:
                    await run_in_threadpool(self.runtime.write_input, self.target, data)
                elif text is not None:
                    await self._text(text)
            except RuntimeFailure as err:
                await self._error(str(err))

    async def _text(self, text: str) -> None:
        control = _control(text)
        if control is None:
            data = text.encode() + (b"\n" if self.lines else b"")
            await run_in_threadpool(self.runtime.write_input, self.target, data)
        elif control.get("type") == "resize":
            rows, cols = control.get("rows"), control.get("cols")
            if not isinstance(rows, int) or not isinstance(cols, int):
                await self._error("resize: rows and cols must be integers")
                return
            await run_in_threadpool(self.runtime.resize, self.target, rows, cols)
        elif control.get("type") == "eof":
            await run_in_threadpool(self.runtime.close_input, self.target)
        else:
            await self._error(f"unknown control message type {control.get('type')!r}")

    async def _error(self, message: str) -> None:
        await self.websocket.send_text(json.dumps({"type": "error", "message": message}))


def _control(text: str) -> dict[str, Any] | None:
    """A JSON object with a ``type`` is a control message; anything else is input."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and "type" in value:
        return value
    return None
