"""bench.httptimeline runs a hooked service and reports every stage of a pooled launch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import httptimeline, marks

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.httptimeline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_httptimeline_reports_each_stage_of_a_pooled_launch() -> None:
    out = _run("--runs", "4", "--gap", "0.2")
    assert out.startswith("4 launches of /bin/true over HTTP (default image, ")
    assert ": 4 pooled, 0 cold (left out)" in out
    # Every mark of the critical path, in every process, was seen.
    for mark in httptimeline.CHAIN[1:]:
        assert f"  -> {marks.MARKS[mark]}\n" in out, marks.MARKS[mark]
    for _, _, what in httptimeline.POOLED_PARTS:
        assert f"  {what}\n" in out, what
    assert "CPU per launch (ms, all launches): api " in out
    # The offsets table is sorted by median: the order a launch guarantees.
    names = list(marks.MARKS.values())
    rows = [line.split(maxsplit=3) for line in out.split("\n\n")[1].splitlines()]
    # Marks seen in every launch: a median over some launches only (the
    # reader's mark after it woke the loop, which may answer first) is not
    # comparable with one over all.
    order = [row[3] for row in rows if len(row) == 4 and row[3] in names and row[2] == "4"]
    for before, after in zip(httptimeline.CHAIN[:-1], httptimeline.CHAIN[1:], strict=True):
        both = marks.MARKS[before] in order and marks.MARKS[after] in order
        if both and (before, after) not in LOOSE:
            assert order.index(marks.MARKS[before]) < order.index(marks.MARKS[after])


#: Marks of two threads that may come in either order: the reader thread
#: marks "woken" after it woke the loop, which runs on the other CPU.
LOOSE = {(32, 33)}


def test_httptimeline_without_a_pool_reports_the_cold_launch() -> None:
    out = _run("--runs", "3", "--pool-size", "0")
    assert ": 0 pooled, 3 cold, " in out
    assert "\ncold: median " in out
    for mark in httptimeline.COLD_CHAIN[1:]:
        assert f"  -> {marks.MARKS[mark]}\n" in out, marks.MARKS[mark]
    assert "  launcher: receive, decode, clone (cold)\n" in out
