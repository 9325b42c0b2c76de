"""The launcher's timeline: its wire form, lenient decoding, old launchers
without it, the stamps' clock, and the child spans app/tracing.py makes of it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.tracing import launcher_steps
from runtime.launcher import protocol as p
from runtime.launcher.framing import LineReader
from runtime.launchtrace import STAMPS, LaunchTimeline, Stamps

FULL = LaunchTimeline(
    received=1_000, cloned=2_000, go_sent=2_100, cgroup_joined=2_500, joined_sent=2_600, execd=9_000
)


def test_a_full_timeline_round_trips_through_a_launched_reply() -> None:
    reply = p.Launched(5, 123, "2026-01-01T00:00:00Z", None, FULL)
    [message] = LineReader().feed(p.encode_reply(3, reply))
    assert message["timeline"] == {name: getattr(FULL, name) for name in STAMPS}
    assert p.Create("c", {}, "/o", "/e").reply(message) == reply


def test_a_reply_without_a_timeline_decodes_as_none() -> None:
    """What a launcher from before the field sends: the launch is the same."""
    message = {"pid": 5, "pid_start_time": 1, "started_at": "t", "exec_error": None}
    assert p.Launched.from_wire(message) == p.Launched(5, 1, "t")
    assert "timeline" not in p.Launched(5, 1, "t").to_wire()


@pytest.mark.parametrize("wire", [None, [], "x", 3])
def test_a_timeline_that_is_not_an_object_is_none(wire: Any) -> None:
    assert LaunchTimeline.from_wire(wire) is None


def test_missing_unknown_and_bad_stamps() -> None:
    wire = {
        "received": 10,
        "cloned": "11",
        "go_sent": True,
        "cgroup_joined": -1,
        "joined_sent": 14.0,
        "execd": 15,
        "later_stamp": 16,
    }
    assert LaunchTimeline.from_wire(wire) == LaunchTimeline(received=10, execd=15)
    assert LaunchTimeline.from_wire({}) == LaunchTimeline()


def test_a_partial_timeline_sends_only_its_stamps() -> None:
    assert LaunchTimeline(received=1, cloned=2).to_wire() == {"received": 1, "cloned": 2}


def test_stamps_are_monotonic_and_converted_to_wall_clock_once() -> None:
    stamps = Stamps()
    before = time.time_ns()
    stamps.stamp("received")
    stamps.stamp("cloned")
    timeline = stamps.timeline()
    after = time.time_ns()
    assert timeline.received is not None and timeline.cloned is not None
    assert before - 1_000_000 <= timeline.received <= timeline.cloned <= after + 1_000_000
    assert timeline.execd is None


def test_restart_keeps_only_the_new_op() -> None:
    stamps = Stamps()
    stamps.stamp("cloned")
    stamps.restart()
    timeline = stamps.timeline()
    assert timeline.cloned is None and timeline.received is not None


def test_a_started_create_makes_three_contiguous_steps() -> None:
    steps = launcher_steps(FULL)
    assert [(name, start, end) for name, start, end, _ in steps] == [
        ("launcher.clone", 1_000, 2_000),
        ("launcher.join", 2_000, 2_600),
        ("child.setup", 2_600, 9_000),
    ]
    assert steps[1][3] == [("go byte sent", 2_100), ("cgroup joined", 2_500)]


def test_a_create_that_does_not_start_stops_at_the_join() -> None:
    created = LaunchTimeline(received=1, cloned=2, cgroup_joined=3)
    assert [(n, s, e) for n, s, e, _ in launcher_steps(created)] == [
        ("launcher.clone", 1, 2),
        ("launcher.join", 2, 3),
    ]


def test_a_start_or_a_pooled_create_is_a_release_then_the_child_setup() -> None:
    # No clone: the launcher's part is the release (for a pooled create, the
    # claim: its cgroup renamed and limited, the spec sent), then the child's.
    started = LaunchTimeline(received=1, go_sent=2, joined_sent=3, execd=7)
    steps = launcher_steps(started)
    assert [(n, s, e) for n, s, e, _ in steps] == [
        ("launcher.release", 1, 3),
        ("child.setup", 3, 7),
    ]
    assert steps[0][3] == [("go byte sent", 2)]
    assert launcher_steps(LaunchTimeline()) == []


def test_a_cloned_launch_has_no_release() -> None:
    cold = LaunchTimeline(received=1, cloned=2, go_sent=3, cgroup_joined=4, joined_sent=5, execd=9)
    names = [n for n, *_ in launcher_steps(cold)]
    assert names == ["launcher.clone", "launcher.join", "child.setup"]
