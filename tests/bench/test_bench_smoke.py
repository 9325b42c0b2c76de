"""A smoke run of the benchmark harness, so that it cannot rot.

A few iterations of each part against a real service; nothing here asserts
a speed, only that every part ran and reported what it measures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]  # the network part: ~10 s more


def test_quick_run_reports_every_part(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--output-dir",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result_file] = out.glob("bench-*-quick.json")
    result = json.loads(result_file.read_text())

    summary = result["latency"]["summary"]
    busybox = (report.BUSYBOX, report.BUSYBOX_COLD)  # warm and cold
    for peer in (report.HOST, report.BALLAST, report.DIRECT, report.UNSHARE, *busybox):
        assert summary[peer]["n"] == 5, peer
        assert 0 < summary[peer]["median_ms"] <= summary[peer]["p95_ms"]
    for tool, peer in (("crun", report.CRUN), ("runc", report.RUNC)):
        if shutil.which(tool):
            assert summary[peer]["n"] == 5, result["latency"]["errors"]
    if shutil.which("docker"):  # the docker CLI against the same service (issue 17)
        for peer in (report.DOCKER_RUN, report.DOCKER_VERSION):
            assert summary[peer]["n"] == 5, result["latency"]["errors"]
    assert result["latency"]["errors"] == {}
    assert set(result["latency"]["failures"].values()) == {0}

    per_clients = result["throughput"]["launches_per_second"][report.HOST]
    assert set(per_clients) == {"1", "4", "16"} and all(v > 0 for v in per_clients.values())

    [scale] = result["scale"]
    assert scale["running_after_start"] == scale["alive_before_kill"] == 20
    assert (scale["kill_mode"], scale["kill_requests"], scale["killed"]) == ("bulk", 1, 20)
    assert scale["launcher_children"] == 20
    assert scale["all_reaped_seconds_after_first_kill"] is not None
    assert scale["all_recorded_exited_seconds_after_first_kill"] is not None

    network = result["network"]  # issue 13's row, in a namespace of its own
    assert network["runs"] == 3
    for part in (network, network["cpu"]):
        assert set(part["rows"]) == {"none", "bridge", "bridge+port"}
        assert all(row["min_ms"] > 0 for row in part["rows"].values())
    assert "Network: one launch of `true` by network" in proc.stdout

    names = {t["target"] for t in result["targets"]}
    assert "host median / unshare median" in names
    assert "bridge launch added over none (median)" in names
    if shutil.which("docker"):
        assert "docker run - docker version (<= 2x native median)" in names
    assert "Targets (issue 7)" in proc.stdout and "Latency of one launch" in proc.stdout
