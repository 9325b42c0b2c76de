"""bench/network.py: a short real run (a service in a namespace of its own,
one user network), so that the harness cannot rot; nothing here asserts a
speed, only that each row reports wall time and CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import network

ROOT = Path(__file__).resolve().parents[2]


def test_summary_gives_each_rows_figures_and_what_it_adds_to_none() -> None:
    out = network.summary(
        {
            "none": [0.010, 0.012, 0.011],
            "bridge": [0.013, 0.012, 0.014],
            "bridge+port": [0.020, 0.015, 0.016],
        }
    )
    assert out["rows"]["none"] == {"median_ms": 11.0, "p90_ms": 11.0, "min_ms": 10.0}
    assert out["added_median_ms"] == {"bridge": 2.0, "bridge+port": 5.0}
    # Round by round: 3, 0 and 3 ms for bridge; 10, 3 and 5 for bridge+port.
    assert out["added_paired_median_ms"] == {"bridge": 3.0, "bridge+port": 5.0}


def test_service_cpu_counts_every_thread_and_skips_the_gone() -> None:
    before = network.service_cpu([os.getpid(), None])
    sum(i * i for i in range(200_000))  # some CPU of our own
    after = network.service_cpu([os.getpid(), None, 2**22 + 1])
    assert after > before > 0


@pytest.mark.root
@pytest.mark.timeout(180)
def test_a_short_run_reports_wall_time_and_cpu_per_row() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.network", "--runs", "2", "--warmup", "0", "--settle", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for part in (report, report["cpu"]):
        assert set(part["rows"]) == {"none", "bridge", "bridge+port"}
        assert set(part["added_median_ms"]) == {"bridge", "bridge+port"}
    assert all(row["min_ms"] > 0 for row in report["cpu"]["rows"].values())
    float(report["load_average"])
    # Six launches, each a hit or a miss of the warm pool.
    assert sum(report["pool_claims"].values()) == 6, report["pool_claims"]
