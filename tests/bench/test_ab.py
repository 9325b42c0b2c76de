"""bench.ab runs and reports both launchers (this tree against itself here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def test_ab_reports_both_trees_and_the_paired_difference() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ab", "--base", str(ROOT), "--runs", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(
        "3 launches of /bin/true each (default image, pool 0), interleaved; load average "
    )
    assert lines[1].split()[:2] == ["base", "median"]
    assert lines[2].split()[:2] == ["this", "median"]
    assert lines[3].startswith("  this - base, paired: median ")
    assert "(95% " in lines[3] and "this / base: medians " in lines[3]
