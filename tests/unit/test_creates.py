"""app/creates.py: creates in turn on one thread; one queued behind a slow
create goes to a worker thread; a cancelled request's queued create never runs."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import Future
from typing import Any, cast

import pytest

from app.creates import Creates
from runtime.api import RuntimeApi
from runtime.asking import Launch
from runtime.spec import CreateRequest

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class _Runtime:
    """``begin_create`` only: records the thread and the context it ran in;
    a command ``("slow",)`` blocks until ``release`` is set."""

    def __init__(self) -> None:
        self.ran: list[tuple[tuple[str, ...], str, str]] = []
        self.release = threading.Event()

    def begin_create(self, create: CreateRequest) -> Launch:
        if create.command == ("slow",):
            assert self.release.wait(10)
        self.ran.append((create.command, threading.current_thread().name, REQUEST_ID.get()))
        exited: Future[Any] = Future()
        return Launch("c" + create.command[0], Future(), exited, Future())


def _api(runtime: _Runtime) -> RuntimeApi:
    return cast(RuntimeApi, runtime)


def test_creates_run_in_turn_on_the_creates_thread_in_their_requests_context() -> None:
    runtime, creates = _Runtime(), Creates()

    async def one(name: str) -> Launch:
        REQUEST_ID.set(f"request {name}")
        return await creates.begin(_api(runtime), CreateRequest((name,)))

    async def main() -> list[Launch]:
        return await asyncio.gather(*(one(str(k)) for k in range(8)))

    try:
        launches = asyncio.run(main())
    finally:
        creates.close()
    assert [launch.container_id for launch in launches] == [f"c{k}" for k in range(8)]
    assert sorted(runtime.ran) == sorted(
        ((str(k),), "creates_0", f"request {k}") for k in range(8)
    )


def test_a_create_queued_behind_a_slow_one_goes_to_a_worker_thread() -> None:
    runtime, creates = _Runtime(), Creates(spill=0.05)

    async def main() -> tuple[Launch, float]:
        slow = asyncio.ensure_future(creates.begin(_api(runtime), CreateRequest(("slow",))))
        await asyncio.sleep(0.01)  # the slow one has the thread
        started = time.monotonic()
        quick = await creates.begin(_api(runtime), CreateRequest(("quick",)))
        waited = time.monotonic() - started
        runtime.release.set()
        await slow
        return quick, waited

    try:
        quick, waited = asyncio.run(main())
    finally:
        runtime.release.set()
        creates.close()
    assert quick.container_id == "cquick"
    assert 0.05 <= waited < 5  # the spill, not the slow create's 10 s
    threads = {command: thread for command, thread, _ in runtime.ran}
    assert threads[("slow",)] == "creates_0"
    assert threads[("quick",)] != "creates_0"  # anyio's worker thread
    assert [command for command, _, _ in runtime.ran] == [("quick",), ("slow",)]


def test_a_cancelled_request_whose_create_is_queued_never_creates() -> None:
    runtime, creates = _Runtime(), Creates(spill=30)

    async def main() -> None:
        slow = asyncio.ensure_future(creates.begin(_api(runtime), CreateRequest(("slow",))))
        await asyncio.sleep(0.01)
        queued = asyncio.ensure_future(creates.begin(_api(runtime), CreateRequest(("never",))))
        await asyncio.sleep(0.01)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        runtime.release.set()
        await slow
        await asyncio.sleep(0.05)  # the thread is free: a queued call would run now

    try:
        asyncio.run(main())
    finally:
        runtime.release.set()
        creates.close()
    assert [command for command, _, _ in runtime.ran] == [("slow",)]


def test_a_cancelled_request_whose_create_is_under_way_drops_its_exit_waiter() -> None:
    runtime, creates = _Runtime(), Creates(spill=30)
    launched: list[Launch] = []
    begin = runtime.begin_create

    def keep(create: CreateRequest) -> Launch:
        launch = begin(create)
        launched.append(launch)
        return launch

    runtime.begin_create = keep  # type: ignore[method-assign]

    async def main() -> None:
        slow = asyncio.ensure_future(creates.begin(_api(runtime), CreateRequest(("slow",))))
        await asyncio.sleep(0.02)  # under way on the creates thread
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow

    try:
        asyncio.run(main())
        runtime.release.set()
        deadline = time.monotonic() + 5
        while not launched and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        runtime.release.set()
        creates.close()
    assert len(launched) == 1  # recorded and launched, as a create whose client left
    exited = launched[0].exited
    assert exited is not None and exited.cancelled()


def test_after_close_a_create_still_runs_on_a_worker_thread() -> None:
    runtime, creates = _Runtime(), Creates()
    creates.close()
    launch = asyncio.run(creates.begin(_api(runtime), CreateRequest(("late",))))
    assert launch.container_id == "clate"
    assert runtime.ran[0][1] != "creates_0"
