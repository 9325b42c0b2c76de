"""tests/conftest.py: root tests skip with a reason without root, and a skip
is a failure under --require-root (what scripts/test passes as root, so CI
cannot go green by skipping the tests that matter)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = """
import pytest

@pytest.mark.root
def test_needs_root():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(SUITE_CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    root: needs root\naddopts = --strict-markers\n")
    pytester.makepyfile(test_sample=TESTS)
    return pytester


def test_without_root_a_root_test_skips_with_a_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = suite.runpytest_inprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs root*"])


def test_under_require_root_a_skip_is_a_failure(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = suite.runpytest_inprocess("--require-root")
    # The skip happens in setup, so pytest counts the failure as an error.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a root test skipped under --require-root*"])
    assert result.ret != 0


def test_as_root_a_root_test_runs(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    suite.runpytest_inprocess("--require-root").assert_outcomes(passed=2)
