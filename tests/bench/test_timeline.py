"""bench.timeline runs a hooked launcher and reports every mark of a launch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import timeline

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def test_timeline_reports_each_mark_of_a_launch() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.timeline", "--runs", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("3 launches of /bin/true (default image), in-process: median ")
    for name in timeline.MARKS.values():
        assert f"  {name}\n" in proc.stdout, name
    assert "Cgroup.add alone: median " in proc.stdout
    # The hooks see the order the launch guarantees, whatever the timing.
    names = set(timeline.MARKS.values())
    rows = [line.split(maxsplit=3) for line in proc.stdout.splitlines()]
    order = [row[3] for row in rows if len(row) == 4 and row[3] in names]
    assert order.index("child's first step") < order.index("child calls execve")
