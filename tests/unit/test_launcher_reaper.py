"""runtime.launcher.reaper: the cgroups' parent goes a linger after the last container."""

from __future__ import annotations

import os
import selectors
from typing import cast

from runtime import cgroups, pids
from runtime.launcher import reaper as reaper_module
from runtime.launcher.entry import Process
from runtime.security import devices
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


class FakeCgroup:
    """Records what the exit and ``tidy`` did to a container's cgroup."""

    def __init__(self, busy_rounds: int = 0) -> None:
        self.busy_rounds = busy_rounds  # removals refused (EBUSY) before one succeeds
        self.calls: list[str] = []

    def stats(self, live: bool = True) -> cgroups.Stats:
        self.calls.append("stats")
        return cgroups.Stats(cpu_seconds=0.5, oom_kills=0)

    def remove(self) -> bool:
        self.calls.append("remove")
        if self.busy_rounds:
            self.busy_rounds -= 1
            return False
        return True

    def kill_all(self, rounds: int = 1) -> bool:
        self.calls.append("kill_all")
        return True


def test_an_exits_cgroups_go_after_its_event_without_a_kill_sweep_when_empty(
    monkeypatch,
):
    removed_devices: list[str] = []
    monkeypatch.setattr(devices, "remove", removed_devices.append)
    cgroup = FakeCgroup()
    launcher = launcher_with(make_entry(cgroup=cgroup))
    reaper = launcher.reaper
    entry = launcher.entries["0"]
    results = reaper.results(entry)
    # The counters are read for the exit event; nothing is removed before it.
    assert results.cpu_seconds == 0.5 and results.oom_killed is False
    assert cgroup.calls == ["stats"] and entry.limiting.cgroup is None
    reaper.unremoved_devices.append("/sys/fs/cgroup/devices/mydocker/c")
    assert reaper.untidy
    reaper.tidy()  # the loop's, once the turn's events are sent
    assert cgroup.calls == ["stats", "remove"]  # empty: no cgroup.procs read, no kill
    assert removed_devices == ["/sys/fs/cgroup/devices/mydocker/c"]
    assert not reaper.untidy


def test_a_busy_cgroup_is_swept_and_retried_each_turn():
    cgroup = FakeCgroup(busy_rounds=3)
    launcher = launcher_with(make_entry(cgroup=cgroup))
    reaper = launcher.reaper
    reaper.results(launcher.entries["0"])
    reaper.tidy()
    assert cgroup.calls == ["stats", "remove", "kill_all", "remove"]
    assert reaper.unremoved["c"][1] == reaper_module.REMOVE_RETRIES - 1
    reaper.tidy()  # the next turn: busy once more, swept, then gone
    assert cgroup.calls[4:] == ["remove", "kill_all", "remove"] and not reaper.untidy


def test_a_reaped_childs_pid_file_goes_at_tidy_after_its_exit_event(tmp_path):
    """runtime/rundir.py: the file names the process only until it is reaped;
    removed once the turn's events are out, before any relaunch of the id."""
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    pidfd = os.pidfd_open(pid)
    pidfile = str(tmp_path / "c.pid")
    pids.write_pidfile(pidfile, pid, 1)
    entry = make_entry()
    entry.process = Process(pid, pidfd, 1, -1, -1, pidfile=pidfile)
    launcher = launcher_with(entry)
    launcher.selector.register(pidfd, selectors.EVENT_READ)
    reaper = launcher.reaper
    event = reaper.reap(entry)
    assert event is not None and event.exit.exit_code == 3
    assert os.path.exists(pidfile)  # still there for the event's way
    assert reaper.unremoved_pidfiles == [pidfile]
    reaper.tidy()
    assert not os.path.exists(pidfile)
    assert reaper.unremoved_pidfiles == []
    reaper.unremoved_pidfiles.append(pidfile)  # gone already (a burial): no error
    reaper.tidy()
