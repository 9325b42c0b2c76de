"""runtime/cgroups/dynmods.py: the favordynmods hierarchy, held by an fd."""

from __future__ import annotations

import errno
import os
import time

import pytest

from runtime import libc
from runtime.cgroups import dynmods


def test_hold_asks_for_a_named_hierarchy_without_controllers(monkeypatch) -> None:
    calls = []

    def fsmount_new(fstype, options, attr=0, flags=()):
        calls.append((fstype, options, flags))
        return 42

    monkeypatch.setattr(libc, "fsmount_new", fsmount_new)
    assert dynmods.hold() == 42
    assert calls == [("cgroup", {"name": "mydocker"}, ("none", "favordynmods"))]


def test_a_kernel_without_the_option_costs_only_the_speed(monkeypatch, caplog) -> None:
    def refuse(*args, **kwargs):
        raise OSError(errno.EINVAL, "fsconfig favordynmods: Invalid argument")

    monkeypatch.setattr(libc, "fsmount_new", refuse)
    assert dynmods.hold() is None
    assert "no favordynmods cgroup hierarchy" in caplog.text


@pytest.mark.root
def test_the_hierarchy_lives_as_long_as_its_fd() -> None:
    """Every process shows a named hierarchy in /proc/PID/cgroup while it
    exists; closing the last fd destroys it (a name of the test's own: no
    other holder)."""
    line = ":name=mydocker-unit-test:/"
    fd = dynmods.hold("mydocker-unit-test")
    assert fd is not None
    try:
        with open("/proc/self/cgroup") as f:
            assert line in f.read()
    finally:
        os.close(fd)
    deadline = time.monotonic() + 10
    while True:  # the kernel destroys it after an RCU grace period
        with open("/proc/self/cgroup") as f:
            if line not in f.read():
                break
        assert time.monotonic() < deadline, "the hierarchy outlived its fd"
        time.sleep(0.02)


def test_a_dying_hierarchy_of_the_same_name_is_waited_for(monkeypatch) -> None:
    answers = [OSError(errno.EBUSY, "fsconfig create: Device or resource busy")] * 3 + [7]

    def fsmount_new(*args, **kwargs):
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    monkeypatch.setattr(libc, "fsmount_new", fsmount_new)
    slept: list[float] = []
    assert dynmods.hold(sleep=slept.append) == 7
    assert slept == [dynmods.BUSY_SLEEP] * 3
