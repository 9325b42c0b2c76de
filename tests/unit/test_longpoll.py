"""app/longpoll.py: a log follower wakes at the exit, and drops its waiter."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from app import longpoll
from runtime.errors import NotFound, Unavailable


def _idle_until(done: threading.Event) -> Iterator[bytes]:
    """A follower's chunks: heartbeats (``b""``) until the target is done."""
    yield b"first"
    while not done.is_set():
        yield b""
    yield b"last"


async def _drain(chunks: Iterator[bytes], ended: Future[object] | None) -> list[bytes]:
    return [chunk async for chunk in longpoll.follow(chunks, ended)]


def test_a_follow_ends_at_the_exit_not_a_poll_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(longpoll, "FOLLOW_POLL_SECONDS", 30.0)  # only the wake-up is in time
    done = threading.Event()
    ended: Future[object] = Future()

    def exit_now() -> None:
        done.set()
        ended.set_result("exited")

    threading.Timer(0.05, exit_now).start()
    started = time.monotonic()
    assert asyncio.run(_drain(_idle_until(done), ended)) == [b"first", b"last"]
    assert time.monotonic() - started < 10.0


def test_a_follow_that_ends_drops_its_exit_waiter() -> None:
    done = threading.Event()
    done.set()
    ended: Future[object] = Future()
    asyncio.run(_drain(_idle_until(done), ended))
    assert ended.cancelled()


def test_without_an_exit_future_a_follow_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(longpoll, "FOLLOW_POLL_SECONDS", 0.01)
    done = threading.Event()
    threading.Timer(0.05, done.set).start()
    assert asyncio.run(_drain(_idle_until(done), None)) == [b"first", b"last"]


def test_exit_of_a_target_gone_meanwhile_is_none() -> None:
    def gone(ref: str) -> Future[object]:
        raise NotFound("container", ref)

    assert longpoll.exit_of(gone, "web") is None
    ready: Future[object] = Future()
    assert longpoll.exit_of(lambda ref: ready, "web") is ready


def test_a_failed_exit_future_leaves_the_follow_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # The service closing fails every waiter: the follow goes on by polls
    # (no busy loop on a done future) until its chunks end.
    monkeypatch.setattr(longpoll, "FOLLOW_POLL_SECONDS", 0.01)
    done = threading.Event()
    ended: Future[object] = Future()
    ended.set_exception(Unavailable("the service is shutting down"))
    polls: list[bytes] = []

    def counted() -> Iterator[bytes]:
        for chunk in _idle_until(done):
            polls.append(chunk)
            if len(polls) == 5:
                done.set()
            yield chunk

    started = time.monotonic()
    assert asyncio.run(_drain(counted(), ended)) == [b"first", b"last"]
    assert len(polls) == 6
    assert time.monotonic() - started >= 0.04  # four idle polls, each slept
