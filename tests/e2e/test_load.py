"""Load, bounded for the suite: 500 launches at 16 clients (bench/load.py).

The full run (5,000 at 32) is ``scripts/load``; docs/reliability.md has its
figures.  The checks are the same: no lost record, every exit code right, no
zombie, the fd count back to its baseline, RSS growth under a bound.
"""

from __future__ import annotations

from bench import load
from tests.e2e.conftest import Service


def test_500_launches_at_16_clients_lose_nothing_and_leak_nothing(own_service: Service) -> None:
    own_service.start()
    assert own_service.process is not None
    report = load.run(
        own_service.url,
        own_service.process.pid,
        own_service.launcher_pid,
        launches=500,
        concurrency=16,
        rss_bound_mib=32,
    )
    assert report.problems() == [], report.to_json()
    assert report.fds_after <= report.fds_baseline
    assert report.launches == 500 and not report.failed_requests
