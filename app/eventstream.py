"""``GET /events`` as a stream that holds no thread while it waits.

    Wakeups   one EventLog listener for the whole app: on each publish it
              wakes, on the event loop, the streams that are waiting
    stream    NDJSON lines: the log replayed from ``since``, then each new
              event, until ``until`` or until the client leaves; ``encode``
              gives the line's shape (``line``: the native one; Docker's is
              app/docker/events.py's) and ``keep`` filters past the EventFilter

Each step of ``EventLog.follow`` runs in a worker thread with ``poll=0``:
it takes what is there and returns at once (a ``None`` when nothing is).
Between steps the stream awaits its wake-up on the loop, with no thread,
so a thousand idle followers hold no worker (the logs follow holds none
either, app/longpoll.py).  A client that leaves cancels the stream at that
await (Starlette's StreamingResponse listens for the disconnect), and the
``finally`` drops its wake-up and closes its follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator

from fastapi.concurrency import run_in_threadpool

from runtime.events import Event, EventFilter, EventLog, Lagged
from runtime.timeutil import rfc3339_nano

#: Events per worker-thread step: a long replay goes out in pieces.
BATCH = 256
#: The longest a waiting stream sleeps without a wake-up: ``until`` and the
#: end of the log are noticed this often at worst.
IDLE_SECONDS = 1.0


def line(event: Event) -> bytes:
    """One NDJSON line: ``time`` (RFC 3339, nine fraction digits) first."""
    data = {"time": rfc3339_nano(event.time_ns), **event.to_json()}
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


class Wakeups:
    """Wakes the waiting streams when anything is published (any thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: set[asyncio.Event] = set()

    def on_event(self, event: Event) -> None:
        # The publisher's thread (a launch, the launcher reader): a set's
        # truth is one read under the GIL, and nothing is scheduled when
        # nobody follows, so a launch pays nothing more then.
        if self._waiting:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiting in self._waiting:
            waiting.set()

    def add(self, waiting: asyncio.Event) -> None:
        self._waiting.add(waiting)

    def discard(self, waiting: asyncio.Event) -> None:
        self._waiting.discard(waiting)


Encode = Callable[[Event], bytes]
Keep = Callable[[Event], bool]


def _take(
    follower: Iterator[Event | None], encode: Encode = line, keep: Keep | None = None
) -> tuple[bytes, bool]:
    """What the follower has now, as lines, and whether it has ended."""
    lines: list[bytes] = []
    try:
        while len(lines) < BATCH:
            event = next(follower)
            if event is None:
                break
            if keep is None or keep(event):
                lines.append(encode(event))
    except StopIteration:
        return b"".join(lines), True
    except Lagged:
        # Fell RING events behind: end, the client resumes with ``since``.
        return b"".join(lines), True
    return b"".join(lines), False


async def stream(
    log: EventLog,
    filter: EventFilter,
    wakeups: Wakeups,
    encode: Encode = line,
    keep: Keep | None = None,
) -> AsyncIterator[bytes]:
    woken = asyncio.Event()
    # Before the first step: an event published after it has drained the
    # ring finds this stream waiting, so no wake-up is missed.
    wakeups.add(woken)
    follower = log.follow(filter, poll=0)
    assert isinstance(follower, Generator)
    try:
        while True:
            woken.clear()
            data, ended = await run_in_threadpool(_take, follower, encode, keep)
            if data:
                yield data
            if ended:
                return
            if len(data) == 0:
                wait = IDLE_SECONDS
                if filter.until_ns is not None:
                    left = (filter.until_ns - time.time_ns()) / 1e9
                    wait = max(0.0, min(wait, left + 0.001))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), wait)
    finally:
        wakeups.discard(woken)
        follower.close()
