"""Suite-wide pytest set-up.

``@pytest.mark.root`` tests need root and real namespaces.  Without root they
skip with a reason; with ``--require-root`` (what ``scripts/test`` passes when
it runs as root, as in CI) a skip of a root test is a failure, so CI cannot
go green by skipping the tests that matter.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-root",
        action="store_true",
        help="fail instead of skipping tests marked root",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root: creates namespaces, mounts and cgroups")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and item.get_closest_marker("root")
        and item.config.getoption("--require-root")
    ):
        report.outcome = "failed"
        report.longrepr = f"a root test skipped under --require-root: {report.longrepr}"


@pytest.fixture(scope="session", autouse=True)
def _mounts_left_under_the_temp_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session, detach what services left mounted in the
    tests' state dirs: the tmpfs a service keeps for its containers' /etc
    files and run state outlives it by design (a restarted service finds
    them), but not the test that made its state dir; pytest could not
    remove those dirs later (EBUSY)."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    for point in sorted(_mount_points_under(base), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _mount_points_under(base: str) -> list[str]:
    """Mount points below ``base`` (proc_pid_mountinfo(5): the fifth field,
    octal escapes for space, tab, newline and backslash)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
            point = point.replace(escape, char)
        if point.startswith(base + "/"):
            points.append(point)
    return points
