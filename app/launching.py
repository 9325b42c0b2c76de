"""``POST /containers``: a launch awaited on the event loop.

    launch(runtime, create, wait, request) -> the container's record

One worker-thread call plans, records and asks the launcher
(``Runtime.begin_create``: record, then launch); the loop then awaits the
launcher's answer and, with ``wait``, the exit, holding no thread.  The
launcher client's reader thread records the reply and the exit and
completes the ``Launch``'s futures; ``asyncio.wrap_future`` hands each to
the loop with ``call_soon_threadsafe``.  Before, a worker thread blocked on
the reply, the reader woke it, and it woke the loop: two hops, each a wait
for a CPU on a busy machine (docs/performance.md).
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from app import longpoll
from runtime import ContainerRecord, Unavailable
from runtime.api import RuntimeApi
from runtime.launcher.client import REQUEST_TIMEOUT
from runtime.launches import EXEC_FAILURE_WAIT, Launch
from runtime.records import EXITED
from runtime.spec import CreateRequest


async def launch(
    runtime: RuntimeApi, create: CreateRequest, wait: bool, request: Request
) -> ContainerRecord:
    """The record once launched; with ``wait``, once exited (or as launched
    if the client went away meanwhile: nobody reads the answer then)."""
    started = await run_in_threadpool(runtime.begin_create, create)
    exited = started.exited
    try:
        record = await answered(started)
    except BaseException:
        if exited is not None:
            exited.cancel()
        raise
    if exited is None:
        return record
    # An exec failure is only final once exited (Launches.settle).
    failing = bool(record.error) and record.status != EXITED
    if not wait and not failing:
        exited.cancel()  # the runtime drops a cancelled waiter
        return record
    timeout = None if wait else EXEC_FAILURE_WAIT
    if await longpoll.settle(exited, timeout, request) == "done":
        return exited.result()
    return record


async def answered(started: Launch) -> ContainerRecord:
    """The launcher's answer, recorded; the runtime's exception for a refusal."""
    answer = asyncio.wrap_future(started.answered)
    # asyncio.wait, not wait_for: a request cancelled meanwhile (the service
    # shutting down) must not cancel the launch, whose reply is still recorded.
    done, _ = await asyncio.wait({answer}, timeout=REQUEST_TIMEOUT)
    if not done:
        started.abandon()
        raise Unavailable(
            f"the launcher did not answer the launch of {started.container_id} in time"
        )
    return answer.result()
