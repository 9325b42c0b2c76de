"""A pytest plugin for docker-py's integration suite, loaded by compat/dockerpy.py.

It runs inside docker-py's own venv (``-p dockerpy_plugin``), so it needs the
standard library and pytest only.  Three jobs, each a hook:

    pytest_load_initial_conftests    with DOCKERPY_SUBSTITUTE_IMAGE set, the suite's
                                     TEST_IMG becomes that name (a diagnostic run,
                                     never the conformance figure)
    pytest_collection_modifyitems    deselects the tests that need swarm, build or
                                     plugins (the issue's scope leaves them out)
    pytest_runtest_logreport,        one outcome per test, with the first line of
    pytest_sessionfinish             its failure, written as JSON to
                                     DOCKERPY_CONFORMANCE_RESULTS
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from typing import Any

import pytest

#: What a test's own source must not call: swarm, image builds, plugins.  A
#: test is judged by its body (and its class's setUp) only, so a message that
#: merely mentions "plugin" (the log-driver error test) stays in.
NEEDS: dict[str, re.Pattern[str]] = {
    "swarm": re.compile(r"init_swarm\(|join_swarm\(|scope=['\"]swarm|\.services\.|\.nodes\."),
    "build": re.compile(r"\.build\("),
    "plugins": re.compile(r"_plugin\(|\.plugins\."),
}

_outcomes: dict[str, dict[str, str]] = {}
_deselected: dict[str, str] = {}


def needs(item: pytest.Item) -> str | None:
    """The excluded capability a test uses, or None."""
    function = getattr(item, "function", None)
    if function is None:
        return None
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None
    for name, pattern in NEEDS.items():
        if pattern.search(source):
            return name
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    substitute = os.environ.get("DOCKERPY_SUBSTITUTE_IMAGE")
    if substitute:
        # The suite's conftest and test modules bind TEST_IMG at import
        # (`from .base import TEST_IMG`): patch base before any of them loads.
        # The runner starts pytest in the checkout, whose root holds tests/.
        sys.path.insert(0, os.getcwd())
        import tests.integration.base as base  # type: ignore[import-not-found]

        base.TEST_IMG = substitute


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        reason = needs(item)
        if reason is None:
            kept.append(item)
        else:
            _deselected[item.nodeid] = reason
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:300]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if xfail:
            entry["outcome"] = "xfailed" if report.skipped else "passed"
        elif report.failed:
            entry.update(outcome="failed", message=_message(report))
        elif report.skipped:
            entry.update(outcome="skipped", message=_message(report))
    elif report.skipped and entry["outcome"] == "passed":
        entry.update(outcome="xfailed" if xfail else "skipped", message=_message(report))
    elif report.failed and entry["outcome"] in ("passed", "skipped"):
        # A setUp or tearDown that failed: an error, as pytest counts it.
        entry.update(outcome="error", message=f"{report.when}: {_message(report)}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("DOCKERPY_CONFORMANCE_RESULTS")
    if not path:
        return
    results: dict[str, Any] = {
        "tests": _outcomes,
        "deselected": _deselected,
    }
    with open(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
