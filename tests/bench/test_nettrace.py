"""bench.nettrace runs a hooked service and launcher in a network namespace
of its own and reports a bridge launch's spans across the three processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_nettrace_reports_the_api_launcher_and_child_spans_of_both_rows() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.nettrace", "--runs", "4", "--warmup", "2", "--settle", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("4 rounds, load average ")
    columns = lines[1].split()[:2]  # the rows, in the order they were first seen
    assert sorted(columns) == ["bridge", "none"], proc.stdout
    rows = {
        line.split("   ")[-1].strip(): dict(zip(columns, line.split()[:2], strict=True))
        for line in lines[2:]
    }
    # Each side stamped: the API, the launcher, the claimed child (by its
    # fill), and the pooled bridge launch's own steps.
    for span in (
        "API begin -> asked",
        "received -> spec handed over",
        "child: claim -> execve",
        "received -> exec'd (launcher)",
    ):
        assert float(rows[span]["bridge"]) > 0 and float(rows[span]["none"]) > 0, span
    assert float(rows["handed over -> /etc trees made"]["bridge"]) > 0, proc.stdout
    assert rows["handed over -> /etc trees made"]["none"] == "-", proc.stdout
    assert float(rows["child: waited for joined"]["bridge"]) >= 0, proc.stdout
