"""``POST /containers``: a launch awaited on the event loop.

    launch(runtime, create, wait, request) -> the container's record

One call on the creates thread plans, records and asks the launcher
(``Runtime.begin_create``: record, then launch; app/creates.py, where a
create queued behind a slow one goes to a worker thread); the loop then awaits,
holding no thread: without ``wait`` the launcher's answer, with it one
future that completes at the exit or at the launch's failure, so the loop
wakes once.  The launcher client's reader thread records the reply and the
exit and completes the ``Launch``'s futures; ``asyncio.wrap_future`` hands
them to the loop (``call_soon_threadsafe``).  Before, a worker thread
blocked on the reply, the reader woke it, and it woke the loop: a hop more,
each a wait for a CPU on a busy machine (docs/performance-log.md, "The lean
API path and the Docker path").
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, InvalidStateError

from fastapi import Request

from app import longpoll
from app.creates import Creates
from runtime import ContainerRecord, Unavailable
from runtime.api import RuntimeApi
from runtime.asking import Launch
from runtime.launcher.client import REQUEST_TIMEOUT
from runtime.launches import EXEC_FAILURE_WAIT
from runtime.records import EXITED
from runtime.spec import CreateRequest


async def launch(
    runtime: RuntimeApi, create: CreateRequest, wait: bool, request: Request
) -> ContainerRecord:
    """The record once launched; with ``wait``, once exited (or as launched
    if the client went away meanwhile: nobody reads the answer then)."""
    creates: Creates = request.app.state.creates
    started = await creates.begin(runtime, create)
    exited = started.exited
    assert exited is not None  # begin_create watches the exit
    if wait:
        return await _until_exit(started, exited, request)
    try:
        record = await answered(started)
    except BaseException:
        exited.cancel()
        raise
    # An exec failure is only final once exited (Launches.settle).
    if record.error and record.status != EXITED:
        if await longpoll.settle(exited, EXEC_FAILURE_WAIT, request) == "done":
            return exited.result()
        return record
    exited.cancel()  # the runtime drops a cancelled waiter
    return record


async def answered(started: Launch) -> ContainerRecord:
    """The launcher's answer, recorded; the runtime's exception for a refusal."""
    answer = asyncio.wrap_future(started.answered)
    # asyncio.wait, not wait_for: a request cancelled meanwhile (the service
    # shutting down) must not cancel the launch, whose reply is still recorded.
    done, _ = await asyncio.wait({answer}, timeout=REQUEST_TIMEOUT)
    if not done:
        started.abandon()
        raise _unanswered(started)
    return answer.result()


async def _until_exit(
    started: Launch, exited: Future[ContainerRecord], request: Request
) -> ContainerRecord:
    """The exit, or the launch's failure, whichever comes: one future that
    either completes, so that the loop wakes once per launch, at its end
    (the answer, recorded on the reader thread before any exit, is not
    awaited on its own)."""
    outcome: Future[ContainerRecord] = Future()

    def answer(done: Future[ContainerRecord]) -> None:
        if done.cancelled():
            _settle(outcome, error=_unanswered(started))
        elif (error := done.exception()) is not None:
            _settle(outcome, error=error)

    def ended(done: Future[ContainerRecord]) -> None:
        if not done.cancelled() and done.exception() is None:
            _settle(outcome, record=done.result())

    started.answered.add_done_callback(answer)
    exited.add_done_callback(ended)
    # A launcher that never answers (REQUEST_TIMEOUT): the request is dropped.
    timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, _abandon_unanswered, started)
    try:
        if await longpoll.settle(outcome, None, request) == "done":
            return outcome.result()
    finally:
        timer.cancel()
        exited.cancel()  # done by now, or nobody waits for it any more
    # The client went away: this answer goes nowhere.
    return await answered(started)


def _abandon_unanswered(started: Launch) -> None:
    if not started.answered.done():
        started.abandon()


def _settle(
    outcome: Future[ContainerRecord],
    record: ContainerRecord | None = None,
    error: BaseException | None = None,
) -> None:
    """Complete ``outcome`` once, from whichever thread comes first."""
    try:
        if error is not None:
            outcome.set_exception(error)
        elif record is not None:
            outcome.set_result(record)
    except InvalidStateError:
        pass  # the other one came first, or the client left


def _unanswered(started: Launch) -> Unavailable:
    return Unavailable(f"the launcher did not answer the launch of {started.container_id} in time")
