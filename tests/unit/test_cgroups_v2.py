"""The v2 driver against a fake cgroupfs tree (tests/fakes/cgroupfs.py)."""

from __future__ import annotations

import os
import signal

import pytest

from runtime.cgroups import CgroupError, V2Manager
from runtime.options import Tuning
from runtime.spec import Limits
from tests.fakes.cgroupfs import FakeCgroupFs, record_paths


@pytest.fixture
def fake(tmp_path) -> FakeCgroupFs:
    fs = FakeCgroupFs(str(tmp_path / "cgroup"), "v2")
    fs.make_root()
    return fs


def manager(fake: FakeCgroupFs, own: str = "/") -> V2Manager:
    return V2Manager(fake.root, "mydocker-0123", own, fake, kill=fake.kill)


def test_create_enables_controllers_and_writes_every_limit(fake):
    cgroup = manager(fake).create("c1", Limits(memory_bytes=64 << 20, pids=32, cpus=0.5))
    assert cgroup.path == f"{fake.root}/mydocker-0123/c1"
    assert fake.writes == [
        ("cgroup.subtree_control", "+memory +pids +cpu"),
        ("mydocker-0123/cgroup.subtree_control", "+memory +pids +cpu"),
        ("mydocker-0123/c1/memory.max", str(64 << 20)),
        ("mydocker-0123/c1/memory.swap.max", "0"),
        ("mydocker-0123/c1/pids.max", "32"),
        ("mydocker-0123/c1/cpu.max", "50000 100000"),
    ]


def test_controllers_already_enabled_are_not_written_again(fake):
    m = manager(fake)
    m.create("c1", Limits())
    fake.writes.clear()
    m.create("c2", Limits(pids=5))
    assert fake.writes == [("mydocker-0123/c2/pids.max", "5")]


def test_tiny_cpu_quota_is_raised_to_the_kernel_floor(fake):
    manager(fake).create("c1", Limits(cpus=0.01))
    assert ("mydocker-0123/c1/cpu.max", "1000 100000") in fake.writes


def test_parent_under_own_cgroup_when_it_delegates(fake):
    own = os.path.join(fake.root, "system.slice", "mydocker.service")
    fake.mkdir(own)
    fake.write(os.path.join(fake.root, "cgroup.subtree_control"), "+memory +pids +cpu")
    fake.mkdir(os.path.join(fake.root, "system.slice"))  # exists: controllers from root
    fake.write(
        os.path.join(fake.root, "system.slice", "cgroup.subtree_control"), "+memory +pids +cpu"
    )
    fake.put(own, "cgroup.controllers", "memory pids cpu\n")
    fake.write(os.path.join(own, "cgroup.subtree_control"), "+memory +pids +cpu")
    m = manager(fake, "/system.slice/mydocker.service")
    assert m.create("c1", Limits()).path == f"{own}/mydocker-0123/c1"


def test_parent_falls_back_to_the_root_when_own_cgroup_does_not_delegate(fake):
    own = os.path.join(fake.root, "user.slice")
    fake.mkdir(own)
    fake.busy.add(own)  # it has processes: enabling controllers would be EBUSY
    m = manager(fake, "/user.slice")
    assert m.create("c1", Limits(memory_bytes=8 << 20)).path == f"{fake.root}/mydocker-0123/c1"


def test_missing_controller_for_a_limit_is_an_error(fake):
    fake.put(fake.root, "cgroup.controllers", "memory\n")
    with pytest.raises(CgroupError, match="pids controller is not enabled"):
        manager(fake).create("c1", Limits(pids=3))


def test_delegation_failure_is_an_error(fake):
    fake.busy.add(fake.root)
    with pytest.raises(CgroupError, match="cannot delegate controllers"):
        manager(fake).create("c1", Limits())


def test_a_failed_write_removes_what_was_created(fake):
    real_write = fake.write

    def write(path: str, text: str) -> None:
        if path.endswith("cpu.max"):
            raise OSError(22, "Invalid argument", path)
        real_write(path, text)

    fake.write = write
    m = manager(fake)
    with pytest.raises(CgroupError, match="cpu.max: Invalid argument"):
        m.create("c1", Limits(cpus=1))
    assert m.leftovers() == []


def test_add_and_procs(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(77)
    assert cgroup.procs_files == [f"{fake.root}/mydocker-0123/c1/cgroup.procs"]
    assert cgroup.procs() == [77]
    assert fake.get(os.path.join(fake.root, "cgroup.procs")).split() == ["1"]


def test_stats_read_the_counters(fake):
    cgroup = manager(fake).create("c1", Limits())
    fake.put(cgroup.path, "memory.current", "4096\n")
    fake.put(cgroup.path, "memory.peak", "1048576\n")
    fake.put(cgroup.path, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    fake.put(cgroup.path, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    fake.put(cgroup.path, "pids.current", "3\n")
    stats = cgroup.stats()
    assert stats.memory_bytes == 4096
    assert stats.memory_peak_bytes == 1 << 20
    assert stats.cpu_seconds == pytest.approx(2.5)
    assert stats.pids == 3
    assert stats.oom_kills == 1


def test_stats_at_exit_skip_the_live_counters(fake, monkeypatch):
    cgroup = manager(fake).create("c1", Limits())
    fake.put(cgroup.path, "memory.peak", "1048576\n")
    fake.put(cgroup.path, "cpu.stat", "usage_usec 2500000\n")
    read = record_paths(monkeypatch, fake, "read")
    stats = cgroup.stats(live=False)
    assert (stats.memory_bytes, stats.pids) == (None, None)
    assert stats.memory_peak_bytes == 1 << 20 and stats.cpu_seconds == pytest.approx(2.5)
    names = sorted(os.path.basename(path) for path in read)
    assert names == ["cpu.stat", "memory.events", "memory.peak"]


def test_stats_without_memory_peak(fake):
    cgroup = manager(fake).create("c1", Limits())
    os.unlink(os.path.join(cgroup.path, "memory.peak"))  # before Linux 5.19
    assert cgroup.stats().memory_peak_bytes is None


def test_kill_all_uses_cgroup_kill(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(5)
    cgroup.add(6)
    assert cgroup.kill_all()
    assert ("mydocker-0123/c1/cgroup.kill", "1") in fake.writes
    assert sorted(fake.killed) == [(5, signal.SIGKILL), (6, signal.SIGKILL)]
    assert cgroup.remove()


def test_kill_all_without_cgroup_kill_loops(fake):
    cgroup = manager(fake).create("c1", Limits())
    os.unlink(os.path.join(cgroup.path, "cgroup.kill"))  # before Linux 5.14
    cgroup.add(5)
    assert cgroup.kill_all()
    assert not any(w[0].endswith("cgroup.kill") for w in fake.writes)
    assert fake.killed == [(5, signal.SIGKILL)]


def test_remove_is_refused_while_busy_and_cleanup_kills_first(fake):
    m = manager(fake)
    cgroup = m.create("c1", Limits())
    cgroup.add(8)
    assert not cgroup.remove()
    assert m.cleanup() == ["c1"]
    assert m.leftovers() == []
    m.remove_parent()
    assert not os.path.exists(m.parent)


def test_remove_empty_parents(fake):
    m = manager(fake)
    m.create("c1", Limits())
    fake.mkdir(os.path.join(fake.root, "mydocker-gone"))
    assert m.remove_empty_parents() == [os.path.join(fake.root, "mydocker-gone")]
    assert m.parent_dirs() == [m.parent] and os.path.isdir(m.parent)


def test_tuning_writes_its_v2_files(fake):
    tuning = Tuning(
        cpu_shares=1024,
        cpu_quota_us=50000,
        cpu_period_us=200000,
        memory_swap_bytes=128 << 20,
        memory_reservation_bytes=32 << 20,
    )
    manager(fake).create("c1", Limits(memory_bytes=64 << 20), tuning)
    written = dict(fake.writes)
    # runc's conversion of shares to a weight: 1024 -> 39.
    assert written["mydocker-0123/c1/cpu.weight"] == "39"
    assert written["mydocker-0123/c1/cpu.max"] == "50000 200000"
    # v2's swap.max is swap alone: MemorySwap less the memory.
    assert written["mydocker-0123/c1/memory.swap.max"] == str(64 << 20)
    assert written["mydocker-0123/c1/memory.low"] == str(32 << 20)


def test_swappiness_and_an_unenabled_cpuset_are_refused_on_v2(fake):
    with pytest.raises(CgroupError, match="swappiness"):
        manager(fake).create("c1", Limits(), Tuning(memory_swappiness=10))
    with pytest.raises(CgroupError, match="cpuset controller is not enabled"):
        manager(fake).create("c2", Limits(), Tuning(cpuset_cpus="0"))
