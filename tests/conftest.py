"""Suite-wide pytest set-up.

``@pytest.mark.root`` tests need root and real namespaces.  Without root they
skip with a reason; with ``--require-root`` (what ``scripts/test`` passes when
it runs as root, as in CI) a skip of a root test is a failure, so CI cannot
go green by skipping the tests that matter.
"""

from __future__ import annotations

import os

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
