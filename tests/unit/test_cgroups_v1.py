"""The v1 driver against a fake cgroupfs tree (tests/fakes/cgroupfs.py)."""

from __future__ import annotations

import os
import signal

import pytest

from runtime import cgroups
from runtime.cgroups import CgroupError, V1Manager
from runtime.options import Tuning
from runtime.spec import Limits
from tests.fakes.cgroupfs import FakeCgroupFs, record_paths

OWN = {"memory": "/session/abc", "pids": "/", "cpu": "/", "cpuacct": "/"}


@pytest.fixture
def fake(tmp_path) -> FakeCgroupFs:
    fs = FakeCgroupFs(str(tmp_path / "cgroup"), "v1")
    fs.make_root()
    return fs


def manager(fake: FakeCgroupFs) -> V1Manager:
    return V1Manager(fake.root, "mydocker-0123", OWN, fake, kill=fake.kill)


def test_parents_sit_under_the_own_cgroup_of_each_hierarchy(fake):
    m = manager(fake)
    assert m.parents["memory"] == f"{fake.root}/memory/session/abc/mydocker-0123"
    assert m.parents["pids"] == f"{fake.root}/pids/mydocker-0123"


def test_create_writes_every_limit(fake):
    cgroup = manager(fake).create("c1", Limits(memory_bytes=64 << 20, pids=32, cpus=0.5))
    assert sorted(fake.writes) == sorted(
        [
            ("memory/session/abc/mydocker-0123/c1/memory.limit_in_bytes", str(64 << 20)),
            ("memory/session/abc/mydocker-0123/c1/memory.memsw.limit_in_bytes", str(64 << 20)),
            ("pids/mydocker-0123/c1/pids.max", "32"),
            ("cpu/mydocker-0123/c1/cpu.cfs_period_us", "100000"),
            ("cpu/mydocker-0123/c1/cpu.cfs_quota_us", "50000"),
        ]
    )
    assert len(cgroup.paths) == 4


def test_without_swap_accounting_memsw_is_skipped(fake, monkeypatch):
    real_mkdir = fake.mkdir

    def mkdir_without_memsw(path: str) -> None:
        real_mkdir(path)
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            os.unlink(memsw)

    monkeypatch.setattr(fake, "mkdir", mkdir_without_memsw)
    manager(fake).create("c1", Limits(memory_bytes=8 << 20))
    assert [w[0].rsplit("/", 1)[1] for w in fake.writes] == ["memory.limit_in_bytes"]


def test_no_limits_writes_nothing_but_still_creates(fake):
    cgroup = manager(fake).create("c1", Limits())
    assert fake.writes == []
    assert all(os.path.isdir(p) for p in cgroup.paths)


def test_add_joins_every_hierarchy(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(4242)
    assert [w for w in fake.writes if w[0].endswith("cgroup.procs")] == [
        (os.path.relpath(p, fake.root) + "/cgroup.procs", "4242") for p in cgroup.paths
    ]
    assert cgroup.procs() == [4242]


def test_co_mounted_cpu_cpuacct_share_one_directory(tmp_path, monkeypatch):
    fake = FakeCgroupFs(str(tmp_path / "cgroup"), "v1")
    fake.make_root(("memory", "pids"))
    os.makedirs(os.path.join(fake.root, "cpu,cpuacct"))
    fake.put(os.path.join(fake.root, "cpu,cpuacct"), "cgroup.procs", "1\n")
    os.symlink("cpu,cpuacct", os.path.join(fake.root, "cpu"))
    os.symlink("cpu,cpuacct", os.path.join(fake.root, "cpuacct"))
    real_mkdir = fake.mkdir

    def mkdir(path: str) -> None:  # the co-mounted directory has both sets of files
        real_mkdir(path)
        if "cpu" in path:
            fake.put(path, "cpuacct.usage", "0\n")

    fake.mkdir = mkdir  # type: ignore[method-assign]
    m = manager(fake)
    assert m.distinct == ("memory", "pids", "cpu")  # worked out once, from the mounts
    resolved: list[str] = []
    real_realpath = os.path.realpath

    def realpath(path: str, **kw: bool) -> str:
        resolved.append(path)
        return real_realpath(path, **kw)

    monkeypatch.setattr(os.path, "realpath", realpath)
    cgroup = m.create("c1", Limits(cpus=1.5))
    assert len(cgroup.paths) == 3
    assert resolved == []  # none per container
    monkeypatch.undo()
    assert ("cpu/mydocker-0123/c1/cpu.cfs_quota_us", "150000") in fake.writes
    assert cgroup.remove()
    m.remove_parent()
    assert not os.path.exists(os.path.join(fake.root, "cpu,cpuacct", "mydocker-0123"))


def test_stats_read_the_counters(fake):
    cgroup = manager(fake).create("c1", Limits())
    memory = cgroup.dirs["memory"]
    fake.put(memory, "memory.usage_in_bytes", "1000\n")
    fake.put(memory, "memory.max_usage_in_bytes", "67108864\n")
    fake.put(memory, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    fake.put(cgroup.dirs["cpuacct"], "cpuacct.usage", "1500000000\n")
    fake.put(cgroup.dirs["pids"], "pids.current", "7\n")
    stats = cgroup.stats()
    assert stats.memory_bytes == 1000
    assert stats.memory_peak_bytes == 64 << 20
    assert stats.cpu_seconds == pytest.approx(1.5)
    assert stats.pids == 7
    assert stats.oom_kills == 2


def test_stats_at_exit_skip_the_live_counters(fake, monkeypatch):
    cgroup = manager(fake).create("c1", Limits())
    memory = cgroup.dirs["memory"]
    fake.put(memory, "memory.max_usage_in_bytes", "67108864\n")
    fake.put(cgroup.dirs["cpuacct"], "cpuacct.usage", "1500000000\n")
    read = record_paths(monkeypatch, fake, "read")
    stats = cgroup.stats(live=False)
    assert (stats.memory_bytes, stats.pids) == (None, None)
    assert stats.memory_peak_bytes == 64 << 20 and stats.cpu_seconds == pytest.approx(1.5)
    names = sorted(path.rsplit("/", 1)[1] for path in read)
    assert names == ["cpuacct.usage", "memory.max_usage_in_bytes", "memory.oom_control"]


def test_stats_of_an_old_kernel_without_oom_kill_counter(fake):
    cgroup = manager(fake).create("c1", Limits())
    fake.put(cgroup.dirs["memory"], "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")
    assert cgroup.stats().oom_kills is None


def test_missing_controller_for_a_limit_is_an_error(tmp_path):
    fake = FakeCgroupFs(str(tmp_path / "cgroup"), "v1")
    fake.make_root(("memory", "cpu", "cpuacct"))
    with pytest.raises(CgroupError, match="pids controller is not mounted"):
        manager(fake).create("c1", Limits(pids=10))


def test_a_failed_write_removes_what_was_created(fake):
    real_write = fake.write

    def write(path: str, text: str) -> None:
        if path.endswith("pids.max"):
            raise OSError(22, "Invalid argument", path)
        real_write(path, text)

    fake.write = write
    m = manager(fake)
    with pytest.raises(CgroupError, match="pids.max: Invalid argument"):
        m.create("c1", Limits(pids=10))
    assert m.leftovers() == []


def test_kill_all_kills_until_empty_then_remove(fake):
    cgroup = manager(fake).create("c1", Limits())
    for pid in (10, 11, 12):
        cgroup.add(pid)
    assert not cgroup.remove()  # EBUSY while processes are in it
    assert cgroup.kill_all()
    assert sorted(fake.killed) == [(p, signal.SIGKILL) for p in (10, 11, 12)]
    assert cgroup.remove()
    assert not any(os.path.exists(p) for p in cgroup.paths)


def test_kill_all_repeats_for_processes_forked_meanwhile(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(10)
    real_kill = fake.kill
    forked: list[int] = []

    def kill(pid: int, sig: int) -> None:
        real_kill(pid, sig)
        if not forked:  # a child appears between the read and the kill
            forked.append(11)
            cgroup.add(11)

    cgroup._kill = kill
    assert cgroup.kill_all()
    assert [p for p, _ in fake.killed] == [10, 11]


def test_kill_all_tolerates_processes_that_already_died(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(10)

    def kill(pid: int, sig: int) -> None:
        fake.kill(pid, sig)
        raise ProcessLookupError

    cgroup._kill = kill
    assert cgroup.kill_all()


def test_cleanup_removes_leftovers_but_kept_ones(fake):
    m = manager(fake)
    m.create("old", Limits()).add(99)
    m.create("live", Limits())
    assert m.leftovers() == ["live", "old"]
    assert m.cleanup(keep={"live"}) == ["old"]
    assert (99, signal.SIGKILL) in fake.killed
    assert m.leftovers() == ["live"]
    m.remove_parent()  # not empty: stays
    assert os.path.isdir(m.parents["memory"])
    m.open("live").remove()
    m.remove_parent()
    assert not any(os.path.exists(p) for p in m.parents.values())


def test_one_round_of_kill_all_does_not_wait_for_a_stuck_process(fake):
    cgroup = manager(fake).create("c1", Limits())
    cgroup.add(10)
    sent = []
    cgroup._kill = lambda pid, sig: sent.append((pid, sig))  # it does not die (D state)
    assert cgroup.kill_all(rounds=1) is False
    assert sent == [(10, signal.SIGKILL)]
    assert not cgroup.remove()


def test_remove_empty_parents_spares_busy_ones_and_ours(fake):
    m = manager(fake)
    m.create("mine", Limits())
    other = V1Manager(fake.root, "mydocker-other", OWN, fake, kill=fake.kill)
    other.create("c", Limits())  # still has a container: must stay
    for controller in ("memory", "pids", "cpu", "cpuacct"):
        base = os.path.dirname(m.parents[controller])
        fake.mkdir(os.path.join(base, "mydocker-empty"))
        fake.mkdir(os.path.join(base, "not-ours"))
    removed = m.remove_empty_parents()
    assert sorted(os.path.basename(p) for p in removed) == ["mydocker-empty"] * 4
    for controller in ("memory", "pids"):
        base = os.path.dirname(m.parents[controller])
        assert {"mydocker-0123", "mydocker-other", "not-ours"} <= set(os.listdir(base))
        assert not os.path.exists(os.path.join(base, "mydocker-empty"))


def test_remove_empty_parents_takes_a_dead_launchers_pool_cgroups_first(fake, monkeypatch):
    """A launcher killed with SIGKILL (its state dir gone with it) leaves its
    warm pool's cgroups, empty once the children exit, which kept its
    parent forever; a live launcher's pool cgroups and a container's stay."""
    monkeypatch.setattr("runtime.cgroups.base._alive", lambda pid: pid == 7)
    m = manager(fake)
    dead = V1Manager(fake.root, "mydocker-dead", OWN, fake, kill=fake.kill)
    for name in ("pool-4-1", "pool-4-2"):
        dead.create(name, Limits())
    live = V1Manager(fake.root, "mydocker-live", OWN, fake, kill=fake.kill)
    live.create("pool-7-1", Limits())
    unknown = V1Manager(fake.root, "mydocker-unknown", OWN, fake, kill=fake.kill)
    unknown.create("c1", Limits())  # a container's: whose launcher, nobody knows
    removed = m.remove_empty_parents()
    assert sorted(removed) == sorted(dead.parent_dirs())
    assert live.leftovers() == ["pool-7-1"]
    assert unknown.leftovers() == ["c1"]


@pytest.mark.parametrize(
    ("name", "orphaned"),
    [
        ("pool-4-1", True),
        ("pool-7-1", False),
        ("c1", False),
        ("pool-x-1", False),
        ("pool-4", False),
    ],
)
def test_orphaned_pool_names(name: str, orphaned: bool) -> None:
    assert cgroups.orphaned_pool(name, alive=lambda pid: pid == 7) is orphaned


def test_cleanup_thaws_a_frozen_container_before_killing_it(tmp_path):
    """A container paused (v1 freezer FROZEN) when its launcher died: SIGKILL
    is not delivered to a frozen task, so the cleanup thaws it first."""
    fs = FakeCgroupFs(str(tmp_path / "cgroup"), "v1")
    fs.make_root(("memory", "pids", "cpu", "cpuacct", "freezer"))
    m = V1Manager(fs.root, "mydocker-0123", OWN, fs, kill=fs.kill)
    m.create("paused", Limits()).add(99)
    state = os.path.join(m.parents["freezer"], "paused", "freezer.state")
    fs.write(state, "FROZEN")
    fs.writes.clear()
    assert m.cleanup() == ["paused"]
    assert fs.writes[0] == ("freezer/mydocker-0123/paused/freezer.state", "THAWED")
    assert fs.killed == [(99, signal.SIGKILL)]


def test_kill_all_of_an_empty_cgroup_writes_nothing(fake):
    cgroup = manager(fake).create("c1", Limits())
    fake.writes.clear()
    assert cgroup.kill_all()
    assert fake.writes == []


def test_reset_zeroes_a_pooled_cgroups_counters(fake):
    """The warm pool (runtime/launcher/pool.py): a ready child's fill is
    not its container's; its process stays."""
    m = manager(fake)
    pooled = m.create("pool-1-1", Limits())
    pooled.add(4242)
    fake.put(pooled.dirs["cpuacct"], "cpuacct.usage", "123456789\n")
    fake.put(pooled.dirs["memory"], "memory.max_usage_in_bytes", "987654\n")
    fake.writes.clear()
    m.reset(pooled)
    assert pooled.procs() == [4242]
    assert sorted(w[0].rsplit("/", 1)[-1] for w in fake.writes) == [
        "cpuacct.usage",
        "memory.max_usage_in_bytes",
    ]
    stats = pooled.stats(live=False)
    assert stats.cpu_seconds == 0 and stats.memory_peak_bytes == 0


def test_reset_without_a_counter_file_skips_it(fake):
    """A kernel without ``memory.max_usage_in_bytes``: ENOENT is no error."""
    m = manager(fake)
    pooled = m.create("pool-1-1", Limits())
    os.remove(os.path.join(pooled.dirs["memory"], "memory.max_usage_in_bytes"))
    fake.writes.clear()
    m.reset(pooled)
    assert [w[0].rsplit("/", 1)[-1] for w in fake.writes] == ["cpuacct.usage"]


def test_adopt_writes_the_containers_limits_only(fake):
    m = manager(fake)
    pooled = m.create("pool-1-1", Limits())
    pooled.add(4242)
    fake.writes.clear()
    m.adopt(pooled, Limits(memory_bytes=8 << 20, pids=4))
    written = {w[0].rsplit("/", 1)[-1]: w[1] for w in fake.writes}
    assert written == {
        "memory.limit_in_bytes": str(8 << 20),
        "memory.memsw.limit_in_bytes": str(8 << 20),
        "pids.max": "4",
    }
    assert pooled.procs() == [4242]
    fake.writes.clear()
    m.adopt(m.create("pool-1-2", Limits()), Limits())
    assert fake.writes == []


def test_rename_moves_every_hierarchy_with_its_process(fake):
    m = manager(fake)
    pooled = m.create("pool-1-1", Limits(pids=4))
    pooled.add(4242)
    renamed = m.rename(pooled, "c1")
    assert renamed.name == "c1"
    assert all(p.endswith("/c1") and os.path.isdir(p) for p in renamed.paths)
    assert not any(os.path.exists(p) for p in pooled.paths)
    assert renamed.procs() == [4242]
    assert fake.get(os.path.join(renamed.dirs["pids"], "pids.max")) == "4"


def test_rename_onto_an_existing_name_puts_back_what_it_renamed(fake):
    m = manager(fake)
    pooled = m.create("pool-1-1", Limits())
    pooled.add(4242)
    os.makedirs(os.path.join(m.parents["cpu"], "c1", "taken"))  # not empty: the rename fails
    with pytest.raises(CgroupError):
        m.rename(pooled, "c1")
    assert all(os.path.isdir(p) for p in pooled.paths)
    assert pooled.procs() == [4242]
    assert not os.path.exists(os.path.join(m.parents["memory"], "c1"))


def test_tuning_writes_its_files(fake):
    tuning = Tuning(
        cpu_shares=512,
        cpu_quota_us=50000,
        cpu_period_us=200000,
        memory_swap_bytes=-1,
        memory_reservation_bytes=32 << 20,
        memory_swappiness=10,
    )
    manager(fake).create("c1", Limits(memory_bytes=64 << 20), tuning)
    written = dict(fake.writes)
    assert written["cpu/mydocker-0123/c1/cpu.shares"] == "512"
    assert written["cpu/mydocker-0123/c1/cpu.cfs_quota_us"] == "50000"
    assert written["cpu/mydocker-0123/c1/cpu.cfs_period_us"] == "200000"
    memory = "memory/session/abc/mydocker-0123/c1"
    # memsw: first the memory limit (no swap), then what MemorySwap says.
    memsw = [v for k, v in fake.writes if k == f"{memory}/memory.memsw.limit_in_bytes"]
    assert memsw == [str(64 << 20), "-1"]
    assert written[f"{memory}/memory.soft_limit_in_bytes"] == str(32 << 20)
    assert written[f"{memory}/memory.swappiness"] == "10"


def test_a_cpuset_is_made_only_when_asked_and_filled_from_above(fake):
    fake.make_root(("memory", "pids", "cpu", "cpuacct", "cpuset"))
    fake.put(f"{fake.root}/cpuset", "cpuset.cpus", "0-3\n")
    fake.put(f"{fake.root}/cpuset", "cpuset.mems", "0\n")
    m = manager(fake)
    plain = m.create("c0", Limits())
    assert "cpuset" not in plain.dirs
    cgroup = m.create("c1", Limits(), Tuning(cpuset_cpus="1-2"))
    parent = f"{fake.root}/cpuset/mydocker-0123"
    assert cgroup.dirs["cpuset"] == f"{parent}/c1"
    assert fake.get(f"{parent}/cpuset.cpus") == "0-3\n"  # copied, so a child may join
    assert fake.get(f"{parent}/c1/cpuset.cpus") == "1-2"
    assert fake.get(f"{parent}/c1/cpuset.mems") == "0\n"
    # Found again by name (after a launcher restart), and removed with the rest.
    assert m.open("c1").dirs["cpuset"] == f"{parent}/c1"
    assert "c1" in m.leftovers()
    assert m.open("c1").remove()
    assert not os.path.exists(f"{parent}/c1")


def test_a_cpuset_without_the_controller_is_an_error(fake):
    with pytest.raises(CgroupError, match="cpuset controller is not mounted"):
        manager(fake).create("c1", Limits(), Tuning(cpuset_mems="0"))


def test_create_and_rename_stat_no_cpuset_path(fake, monkeypatch):
    """Per launch, a create without a cpuset and a pooled child's rename
    take their directories as they are: no stat(2) of a cpuset cgroup that
    cannot be there (``open`` still looks for one: a container's own)."""
    fake.make_root(("memory", "pids", "cpu", "cpuacct", "cpuset"))
    fake.put(f"{fake.root}/cpuset", "cpuset.cpus", "0-3\n")
    fake.put(f"{fake.root}/cpuset", "cpuset.mems", "0\n")
    m = manager(fake)
    m.create("other", Limits(), Tuning(cpuset_cpus="0"))  # the cpuset parent exists
    looked = record_paths(monkeypatch, fake, "exists")
    pooled = m.create("pool-1-1", Limits())
    renamed = m.rename(pooled, "c1")
    assert not any("/cpuset/" in path for path in looked), looked
    assert "cpuset" not in renamed.dirs
    assert "cpuset" in m.open("other").dirs
