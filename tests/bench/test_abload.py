"""bench.abload runs two services under load and reports both (this tree
against itself, pooled against cold, here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_abload_reports_rates_cpu_and_the_pools_claims_per_tree() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.abload",
            "--base",
            str(ROOT),
            "--base-pool-size",
            "0",
            "--pool-size",
            "2",
            "--clients",
            "2",
            "--slices",
            "1",
            "--seconds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("2 clients, 1 slices of 1.0 s per tree (default image, pool 2, ")
    assert "base's 0" in lines[0]
    row = re.compile(
        r"  (base|this) +[\d.]+ launches/s; CPU per launch \(ms\): API [\d.]+, "
        r"launcher [\d.]+, zygote ([\d.]+), containers [\d.]+, total [\d.]+; "
        r"pool (\d+) hits, (\d+) misses"
    )
    base, this = (row.fullmatch(line) for line in lines[1:3])
    assert base is not None and this is not None, lines
    assert base.group(3) == "0" and int(base.group(4)) > 0  # no pool: every launch cold
    assert int(this.group(3)) > 0  # the pooled service's first launches hit
    # Its fills are cloned by its zygote, whose CPU counts (runtime/launcher/zygote.py).
    assert float(this.group(2)) > 0 and float(base.group(2)) == 0
    assert lines[3].startswith("  this / base: ")
