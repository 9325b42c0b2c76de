"""runtime/meters.py: how an exit is classified, how a step name is bounded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.meters import OTHER, SETUP_STEPS, Outcome, exit_outcome, setup_step

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("attributes", "outcome"),
    [
        ({"exit_code": "0", "oom_killed": "false"}, Outcome.EXIT_0),
        ({"exit_code": "3"}, Outcome.EXIT_NONZERO),
        ({"exit_code": "127", "error": "exec x: not found"}, Outcome.EXIT_NONZERO),
        ({"exit_code": "137", "signal": "SIGKILL"}, Outcome.SIGNAL),
        ({"exit_code": "143", "signal": "SIGTERM", "oom_killed": "false"}, Outcome.SIGNAL),
        # The cause before the symptom: both end in SIGKILL.
        ({"exit_code": "137", "signal": "SIGKILL", "oom_killed": "true"}, Outcome.OOM),
        ({"exit_code": "137", "signal": "SIGKILL", "timed_out": "true"}, Outcome.TIMEOUT),
        ({"error": "exit status lost: the launcher ..."}, Outcome.LOST),
        ({"error": "launch failed: ..."}, Outcome.LOST),
        ({}, Outcome.LOST),
    ],
)
def test_exit_outcome(attributes: dict[str, str], outcome: Outcome) -> None:
    assert exit_outcome(attributes) is outcome


@pytest.mark.parametrize(
    ("step", "bounded"),
    [
        ("mount /proc", "mount /proc"),
        ("pivot_root", "pivot_root"),
        ("load seccomp filter", "load seccomp filter"),
        ("exec /bin/nothing", "exec"),
        ("exec sh", "exec"),
        ("exec ''", "exec"),
        ("mount /data/of/a/user", "mount"),
        ("mount tmpfs /run", "mount tmpfs"),
        ("bind /dev/null", "bind device"),
        ("create workdir /srv/x", "create workdir"),
        ("mask /proc/kcore", "mask"),
        ("hide /etc/shadow", "hide"),
        ("something new", OTHER),
        ("", OTHER),
        (None, OTHER),
    ],
)
def test_setup_step_is_bounded(step: str | None, bounded: str) -> None:
    assert setup_step(step) == bounded
    assert setup_step(bounded) == bounded  # bounding twice changes nothing


def test_every_literal_step_of_the_child_is_known() -> None:
    """A step added to child.py or rootfs.py without a name here would be
    counted as ``other``: this fails first."""
    named = set()
    for module in ("runtime/child.py", "runtime/rootfs.py"):
        source = (ROOT / module).read_text()
        pattern = r'\(\s*"([^"{}]+)",\s*(?:lambda|self\.|_|paths|reset|capab)'
        named |= set(re.findall(pattern, source))
    assert named, "no step names found: the pattern needs updating"
    assert named <= SETUP_STEPS, named - SETUP_STEPS
