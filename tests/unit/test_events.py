"""runtime.events: the bounded on-disk log, filters, and followers that miss nothing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runtime.events import (
    RING,
    Event,
    EventFilter,
    EventLog,
    EventType,
    Lagged,
    now_event,
)

C = EventType.CONTAINER


def event(n: int, action: str = "start", **attributes: str) -> Event:
    return Event(1_000 + n, C, action, (str(n) * 64)[:64], f"c{n}", attributes)


def test_events_survive_a_new_log_on_the_same_dir(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    for n in range(3):
        log.publish(event(n))
    log.close()
    again = EventLog(str(tmp_path))
    assert [e.name for e in again.read()] == ["c0", "c1", "c2"]
    again.publish(event(3))
    assert [e.name for e in again.read(EventFilter(since_ns=1_002))] == ["c2", "c3"]


def test_the_log_stays_within_its_bound(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path), max_bytes=4096)
    for n in range(500):
        log.publish(event(n))
    total = sum(os.path.getsize(tmp_path / name) for name in os.listdir(tmp_path))
    assert total <= 4096
    names = [e.name for e in log.read()]
    assert names[-1] == "c499" and len(names) < 500
    numbers = [int(n[1:]) for n in names]
    assert numbers == list(range(numbers[0], 500))  # the newest, in order, no gap


def test_a_line_cut_by_a_crash_is_skipped(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    log.publish(event(1))
    log.close()
    with open(tmp_path / "events.1.ndjson", "ab") as f:
        f.write(b'{"time_ns": 5, "type": "contai')
    assert [e.name for e in EventLog(str(tmp_path)).read()] == ["c1"]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (EventFilter(types=frozenset({EventType.EXEC})), ["x"]),
        (EventFilter(actions=frozenset({"die"})), ["c2"]),
        (EventFilter(until_ns=1_001), ["c1"]),
        (EventFilter(container="c2"), ["c2", "x"]),
        (EventFilter(container="2" * 12), ["c2", "x"]),
        (EventFilter(container="2" * 11), []),  # too short a prefix
        (EventFilter(labels=("job",)), ["c1", "c2"]),
        (EventFilter(labels=("job=7",)), ["c2"]),
    ],
)
def test_filters(tmp_path: Path, filter: EventFilter, expected: list[str]) -> None:
    log = EventLog(str(tmp_path))
    log.publish(event(1, **{"label.job": "6"}))
    log.publish(event(2, "die", **{"label.job": "7"}))
    log.publish(
        Event(1_003, EventType.EXEC, "exec_start", "e" * 64, "x", {"container": "2" * 64,
              "container_name": "c2"})
    )  # fmt: skip
    assert [e.name for e in log.read(filter)] == expected


def test_a_follower_replays_then_follows_without_gap_or_repeat(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    for n in range(5):
        log.publish(event(n))
    seen: list[str] = []
    done = threading.Event()

    def follow() -> None:
        for e in log.follow(stop=lambda: len(seen) >= 10, poll=0.05):
            if e is not None:
                seen.append(e.name)
        done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    for n in range(5, 10):
        log.publish(event(n))
        time.sleep(0.005)
    assert done.wait(5)
    assert seen == [f"c{n}" for n in range(10)]


def test_a_follower_ends_when_the_log_closes_and_at_until(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    follower = log.follow(poll=0.05)
    assert next(follower) is None  # nothing yet: a chance to check the client
    log.close()
    assert list(follower) == []
    until = EventLog(str(tmp_path / "b")).follow(EventFilter(until_ns=time.time_ns()), poll=0.01)
    assert [e for e in until if e is not None] == []


def test_a_follower_that_falls_behind_the_ring_is_ended(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path), max_bytes=1 << 30)
    follower = log.follow(poll=0.01)
    assert next(follower) is None
    for n in range(RING + 1):
        log.publish(event(n))
    with pytest.raises(Lagged):
        next(follower)


def test_listeners_see_every_event_and_cannot_break_publish(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    seen: list[Event] = []

    def broken(e: Event) -> None:
        raise RuntimeError("listener bug")

    log.listeners += [broken, seen.append]
    log.publish(event(1))
    assert [e.name for e in seen] == ["c1"]


def test_now_event_turns_attributes_into_strings_and_drops_none() -> None:
    e = now_event(C, "die", "a" * 64, "n", exit_code=3, oom_killed=False, signal=None)
    assert e.attributes == {"exit_code": "3", "oom_killed": "false"}
    assert Event.from_json(e.to_json()) == e
