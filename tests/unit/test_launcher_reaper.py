"""runtime.launcher.reaper: the cgroups' parent goes a linger after the last container."""

from __future__ import annotations

from typing import cast

from runtime import cgroups
from runtime.launcher import reaper as reaper_module
from tests.unit.test_launcher_watch import _close_launchers, launcher_with, make_entry

__all__ = ["_close_launchers"]  # the fixture that closes what launcher_with made


class FakeManager:
    def __init__(self) -> None:
        self.parent_removals = 0

    def remove_parent(self) -> None:
        self.parent_removals += 1


def test_the_parent_goes_a_linger_after_the_last_container_cgroup():
    manager = FakeManager()
    launcher = launcher_with(make_entry(cgroup=object()))
    reaper = launcher.reaper
    now = [100.0]
    reaper.clock = lambda: now[0]
    reaper.cgroups = cast(cgroups.Manager, manager)  # only remove_parent is called
    entry = launcher.entries["0"]
    reaper.note_if_unused()
    assert reaper.linger_timeout(9.0) == 9.0  # a container still has its cgroup: no linger
    entry.limiting.cgroup = None
    reaper.unremoved = {"x": (cast(cgroups.Cgroup, object()), 3)}
    reaper.note_if_unused()
    assert reaper.linger_timeout(9.0) == 9.0  # one still waits for removal
    reaper.unremoved = {}
    reaper.note_if_unused()
    assert reaper.unused_since == 100.0  # unused from now: the next launch may come
    assert reaper.linger_timeout(5.0) == reaper_module.PARENT_LINGER
    now[0] += reaper_module.PARENT_LINGER / 2
    reaper.remove_parent_if_due()
    assert manager.parent_removals == 0
    assert reaper.linger_timeout(5.0) == reaper_module.PARENT_LINGER / 2
    now[0] += reaper_module.PARENT_LINGER / 2
    reaper.remove_parent_if_due()
    assert manager.parent_removals == 1
    now[0] += 10 * reaper_module.PARENT_LINGER
    reaper.remove_parent_if_due()
    assert manager.parent_removals == 1  # once per idle spell (a pool keeps it busy)
    assert reaper.linger_timeout(1.0) == 1.0


def test_a_container_made_during_the_linger_keeps_the_parent():
    manager = FakeManager()
    launcher = launcher_with(make_entry())
    reaper = launcher.reaper
    now = [100.0]
    reaper.clock = lambda: now[0]
    reaper.cgroups = cast(cgroups.Manager, manager)
    reaper.note_if_unused()
    launcher.entries["0"].limiting.cgroup = cast(cgroups.Cgroup, object())
    now[0] += reaper_module.PARENT_LINGER
    reaper.remove_parent_if_due()
    assert manager.parent_removals == 0
    assert reaper.unused_since is None
