"""Requests that last: waiting for an exit, following logs.

Both hold no worker thread while they wait, and both end as soon as their
client goes away, so a thousand abandoned ``wait`` or ``follow`` requests
leave neither threads nor pending futures behind
(tests/e2e/test_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runtime import ContainerRecord, Runtime
from runtime.logs import FOLLOW_POLL_SECONDS


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (ASGI ``http.disconnect``).

    The request body has been read by then (or there is none), so the next
    message the server has for us is the disconnect."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def await_exit(
    runtime: Runtime, ref: str, timeout: float | None, request: Request
) -> ContainerRecord | None:
    """The record once the container has exited, or as it is after ``timeout``;
    None when the client went away first (nobody is left to answer)."""
    future = await run_in_threadpool(runtime.exit_future, ref)
    exited = asyncio.wrap_future(future)
    gone = asyncio.ensure_future(_disconnected(request))
    either: set[asyncio.Future[Any]] = {exited, gone}
    try:
        done, _ = await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if exited in done:
        return exited.result()
    # Cancelling the asyncio future cancels the runtime's, which then
    # forgets this waiter (Runtime.exit_future).
    exited.cancel()
    if gone in done:
        return None
    return await run_in_threadpool(runtime.get, ref)


async def follow(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive ``runtime.logs`` from the event loop: each step in a worker thread,
    the waits between polls on the loop.  When the client disconnects,
    Starlette cancels this generator at an ``await``: no thread stays behind
    in a blocking read."""
    end = object()
    try:
        while True:
            chunk = await run_in_threadpool(next, chunks, end)
            if chunk is end:
                return
            assert isinstance(chunk, bytes)
            if chunk:
                yield chunk
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
