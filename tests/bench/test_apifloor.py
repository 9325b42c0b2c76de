"""bench.apifloor measures the app's own cost of a launch request, with a profile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.timeout(60)]


def test_apifloor_reports_cpu_and_wall_per_request_and_a_profile() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.apifloor", "--requests", "20", "--warmup", "2", "--profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    found = re.search(r"20 requests: CPU ([0-9.]+) ms, wall ([0-9.]+) ms per request", first)
    assert found and float(found[1]) > 0 and float(found[2]) > 0, first
    assert "Ordered by: internal time" in proc.stdout
