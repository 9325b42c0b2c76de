"""Requests that last: waiting for an exit, following logs.

Both hold no worker thread while they wait, and both end as soon as their
client goes away, so a thousand abandoned ``wait`` or ``follow`` requests
leave neither threads nor pending futures behind
(tests/e2e/test_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future as ConcurrentFuture
from typing import Any, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runtime import ContainerRecord, ExecRecord, RuntimeFailure, Unavailable
from runtime.api import RuntimeApi
from runtime.logs import FOLLOW_POLL_SECONDS

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (ASGI ``http.disconnect``).

    The request body has been read by then (or there is none), so the next
    message the server has for us is the disconnect."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def settle(future: ConcurrentFuture[T], timeout: float | None, request: Request) -> str:
    """Wait for ``future``, ``timeout`` or the client's departure, whichever
    comes first: ``"done"`` (then ``future.result()`` is there), ``"timeout"``
    or ``"gone"``.

    When it is not done, the future is cancelled, and the runtime, which
    forgets cancelled waiters (Runtime.exit_future), holds nothing for it."""
    settled = asyncio.wrap_future(future)
    gone = asyncio.ensure_future(_disconnected(request))
    either: set[asyncio.Future[Any]] = {settled, gone}
    try:
        done, _ = await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError as err:
        # uvicorn cancels requests still open when --shutdown-timeout runs
        # out; a cancelled handler would answer 500.  Say what happened.
        settled.cancel()
        raise Unavailable("the service is shutting down; ask again once it is back") from err
    finally:
        gone.cancel()
    if settled in done:
        return "done"
    settled.cancel()
    return "gone" if gone in done else "timeout"


async def await_exit(
    runtime: RuntimeApi, ref: str, timeout: float | None, request: Request
) -> ContainerRecord | None:
    """The record once the container has exited, or as it is after ``timeout``;
    None when the client went away first (nobody is left to answer)."""
    future = await run_in_threadpool(runtime.exit_future, ref)
    outcome = await settle(future, timeout, request)
    if outcome == "done":
        return future.result()
    if outcome == "timeout":
        return await run_in_threadpool(runtime.get, ref)
    return None


async def await_exec_exit(
    runtime: RuntimeApi, ref: str, timeout: float | None, request: Request
) -> ExecRecord | None:
    """``await_exit`` for an exec."""
    future = await run_in_threadpool(runtime.exec_exit_future, ref)
    outcome = await settle(future, timeout, request)
    if outcome == "done":
        return future.result()
    if outcome == "timeout":
        return await run_in_threadpool(runtime.get_exec, ref)
    return None


def exit_of(
    future_of: Callable[[str], ConcurrentFuture[T]], ref: str
) -> ConcurrentFuture[T] | None:
    """The exit future a follower wakes on, or ``None`` (it then polls) if
    the target went away since its logs were opened."""
    try:
        return future_of(ref)
    except RuntimeFailure:
        return None


async def follow(
    chunks: Iterator[bytes], ended: ConcurrentFuture[Any] | None = None
) -> AsyncIterator[bytes]:
    """Drive ``runtime.logs`` from the event loop: each step in a worker thread,
    the waits between polls on the loop, cut short when ``ended`` (the
    target's exit future) completes, so the stream ends at the exit rather
    than up to a poll later.  When the client disconnects, Starlette
    cancels this generator at an ``await``: no thread stays behind in a
    blocking read, and ``ended`` is cancelled (the runtime drops it)."""
    end = object()
    exited = asyncio.wrap_future(ended) if ended is not None else None
    try:
        while True:
            chunk = await run_in_threadpool(next, chunks, end)
            if chunk is end:
                return
            assert isinstance(chunk, bytes)
            if chunk:
                yield chunk
            elif exited is not None and not exited.done():
                await asyncio.wait({exited}, timeout=FOLLOW_POLL_SECONDS)
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        if ended is not None:
            ended.cancel()
        if exited is not None and exited.done() and not exited.cancelled():
            exited.exception()  # failed (the service closing): seen, so never logged
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
