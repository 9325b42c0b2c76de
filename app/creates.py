"""``POST /containers``'s blocking half, run in turn on one thread of its own.

    Creates.begin(runtime, create) -> Launch   awaited on the event loop:
                                              ``Runtime.begin_create`` (plan,
                                              admit, record, ask) on the
                                              creates thread, or, queued
                                              longer than ``SPILL_SECONDS``,
                                              on a worker thread as before
    Creates.close()                           the thread ended (the app's lifespan)

Why one thread: ``begin_create`` holds the admission lock for most of its
work and Python runs one thread at a time, so creates on FastAPI's worker
threads (anyio's pool, up to 40) gained no parallelism under many clients:
sixteen clients kept sixteen threads busy, each waking for its create,
contending for the GIL and the lock and handing them over at every system
call.  Queued to one thread they run back to back on a thread that stays
awake while there is work: the API's CPU per launch fell by 7-22% at 16
clients (docs/performance-log.md "The API's CPU under load").

Why the spill: a create can block for long (a volume's first copy, a
launcher being started, the gate while a reconcile holds it).  A create
still queued after ``SPILL_SECONDS`` is taken back before it starts (a
queued call cancelled never runs) and run on a worker thread, as all were
before, so a slow create holds the others back by that much at most.

The request's context goes with the call (``contextvars``), as
``run_in_threadpool`` carries it: the launch's span and meter run in it
(app/tracing.py, app/metrics.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Future, ThreadPoolExecutor

from fastapi.concurrency import run_in_threadpool

from runtime.api import RuntimeApi
from runtime.asking import Launch
from runtime.spec import CreateRequest

#: How long a create may wait behind others before it goes to a worker thread.
SPILL_SECONDS = 0.05


class Creates:
    def __init__(self, spill: float = SPILL_SECONDS) -> None:
        self.spill = spill
        # Made on first use (ThreadPoolExecutor starts its thread at the
        # first submit), so an app that never creates has no such thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creates")

    async def begin(self, runtime: RuntimeApi, create: CreateRequest) -> Launch:
        """``runtime.begin_create(create)`` off the loop: its ``Launch``."""
        context = contextvars.copy_context()
        try:
            queued = self._thread.submit(context.run, runtime.begin_create, create)
        except RuntimeError:  # closed: the service is stopping
            return await run_in_threadpool(runtime.begin_create, create)
        waiting = asyncio.wrap_future(queued)
        try:
            done, _ = await asyncio.wait({waiting}, timeout=self.spill)
            if not done and queued.cancel():  # behind a slow one: not started, never will be
                return await run_in_threadpool(runtime.begin_create, create)
            return await waiting
        except asyncio.CancelledError:
            _forsake(queued)  # a spilled one's is cancelled already: nothing to do
            raise

    def close(self) -> None:
        """End the thread; a create queued and not started never runs."""
        self._thread.shutdown(wait=False, cancel_futures=True)


def _forsake(queued: Future[Launch]) -> None:
    """The request is cancelled (the service shutting down): a create not
    started never runs; one under way is recorded and launched, as a
    create whose client left, and nobody waits for its exit."""
    if queued.cancel():
        return

    def drop(done: Future[Launch]) -> None:
        if not done.cancelled() and done.exception() is None:
            launch = done.result()
            if launch.exited is not None:
                launch.exited.cancel()  # the runtime drops a cancelled waiter

    queued.add_done_callback(drop)
