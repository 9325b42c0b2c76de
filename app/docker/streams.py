"""Docker's stream format for logs and attach.

Without a TTY, stdout and stderr travel over one connection as frames: an
8-byte header (stream: 1 stdout, 2 stderr; three zero bytes; the payload's
length, big-endian uint32) and the payload.  With a TTY the bytes go as
they are.  (Docker Engine API, "Stream format", under container attach.)
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator

from fastapi.concurrency import run_in_threadpool

from runtime.logs import batched
from runtime.timeutil import rfc3339_nano

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
_HEADER = struct.Struct(">BxxxL")
#: A frame's payload is a uint32; stay far below it.
MAX_FRAME = 1 << 20


def frame(stream: str, payload: bytes) -> bytes:
    out = bytearray()
    for start in range(0, len(payload), MAX_FRAME):
        part = payload[start : start + MAX_FRAME]
        out += _HEADER.pack(STREAM_IDS[stream], len(part)) + part
    return bytes(out)


def encode_lines(
    lines: Iterator[tuple[str, int, bytes]], tty: bool, timestamps: bool
) -> Iterator[bytes]:
    """Dated lines (``Runtime.log_lines``), each its own frame without a
    TTY, with ``timestamps`` after its time (Docker's RFC3339NanoFixed) and
    a space; gathered up to ``MAX_FRAME`` bytes per chunk (``logs.batched``)."""

    def encoded(stream: str, when: int, line: bytes) -> bytes:
        if not line:
            return b""  # a heartbeat
        if timestamps:
            line = rfc3339_nano(when).encode() + b" " + line
        return line if tty else frame(stream, line)

    return batched((encoded(*dated) for dated in lines), MAX_FRAME)


def frame_lines(stream: str, payload: bytes) -> bytes:
    """A frame per line, as Docker's log drivers store and send them: docker-py's
    ``logs(stream=True)`` (and so ``containers.run(stream=True)``) yields one
    item per frame, and a client expects one per line."""
    return b"".join(frame(stream, line) for line in payload.splitlines(keepends=True))


def encode(chunks: Iterator[tuple[str, bytes]], tty: bool) -> Iterator[bytes]:
    for stream, chunk in chunks:
        if not chunk:
            yield b""  # a heartbeat: lets the server notice a departed client
        else:
            yield chunk if tty else frame_lines(stream, chunk)


async def in_threadpool(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive a blocking iterator (it may sleep while following) off the event loop."""
    sentinel = object()
    try:
        while True:
            chunk = await run_in_threadpool(next, chunks, sentinel)
            if chunk is sentinel:
                return
            assert isinstance(chunk, bytes)
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await run_in_threadpool(close)
