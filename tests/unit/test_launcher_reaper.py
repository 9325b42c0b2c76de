"""runtime.launcher.reaper: the cgroups' parent goes with the last container."""

from __future__ import annotations

from tests.unit.test_launcher_watch import _close_launchers, launcher_with, make_entry

__all__ = ["_close_launchers"]  # the fixture that closes what launcher_with made


class FakeManager:
    def __init__(self) -> None:
        self.parent_removals = 0

    def remove_parent(self) -> None:
        self.parent_removals += 1


def test_the_parent_goes_with_the_last_container_cgroup():
    manager = FakeManager()
    launcher = launcher_with(make_entry(cgroup=object()))
    launcher.reaper.cgroups = manager
    launcher.reaper.remove_parent_if_unused()
    assert manager.parent_removals == 0  # a container still has its cgroup
    launcher.entries["0"].limiting.cgroup = None
    launcher.reaper.unremoved = {"x": (object(), 3)}
    launcher.reaper.remove_parent_if_unused()
    assert manager.parent_removals == 0  # one still waits for removal
    launcher.reaper.unremoved = {}
    launcher.reaper.remove_parent_if_unused()
    assert manager.parent_removals == 1
