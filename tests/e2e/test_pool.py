"""The launcher's warm pool (runtime/launcher/pool.py) over HTTP, with real
containers: launches are served by pooled children (the metrics say so),
each sees nothing of an earlier one, its cgroup is the container's and its
counters start at zero, limits apply, and a launcher killed with SIGKILL
leaks no pooled child and no pooled cgroup; a launch the pool cannot serve is
cloned by its zygote, and is what a cold container is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.service import is_zygote
from runtime import cgroups
from tests.e2e.conftest import Service, free_port, logs, run
from tests.e2e.test_limits import assert_in_its_cgroups
from tests.e2e.test_metrics import scrape

POOL = 2
#: The host image only (test_pool_overlay.py: busybox).
ARGS = ["--pool-size", str(POOL), "--pool-images="]


def hits(client: httpx.Client) -> float:
    return scrape(client)['mydocker_pool_claims_total{outcome="hit"}']


def wait_ready(client: httpx.Client, count: int = POOL, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while scrape(client).get('mydocker_pool_children{state="ready"}', 0) < count:
        assert time.monotonic() < deadline, "the pool did not fill"
        time.sleep(0.05)


def launcher_children(launcher: int) -> set[int]:
    pids: set[int] = set()
    for task in os.listdir(f"/proc/{launcher}/task"):
        with open(f"/proc/{launcher}/task/{task}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


def pooled_children(launcher: int) -> tuple[set[int], set[int]]:
    """The launcher's children: (pooled children, its zygote)."""
    children = launcher_children(launcher)
    zygote = {pid for pid in children if is_zygote(pid)}
    return children - zygote, zygote


def pool_cgroups(state_dir: Path, launcher: int) -> list[str]:
    manager = cgroups.manager(os.fspath(state_dir))
    assert manager is not None
    prefix = f"pool-{launcher}-"
    return [
        os.path.join(parent, name)
        for parent in manager.parent_dirs()
        for name in manager.fs.subdirs(parent)
        if name.startswith(prefix)
    ]


def pool_service(tmp_path_factory: pytest.TempPathFactory, args: list[str]) -> Iterator[Service]:
    """A module's service with its own pool settings, and a client of it."""
    state = tmp_path_factory.mktemp("pool") / "state"
    svc = Service(state_dir=state, port=free_port(), extra_args=args)
    svc.start()
    yield svc
    svc.close()


def pool_client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from pool_service(tmp_path_factory, ARGS)


@pytest.fixture
def client(pooled: Service) -> Iterator[httpx.Client]:
    yield from pool_client(pooled)


def test_a_launch_is_served_by_a_pooled_child_in_the_containers_cgroup(
    client: httpx.Client,
) -> None:
    wait_ready(client)
    before = hits(client)
    done = run(client, ["sh", "-c", "hostname; cat /proc/self/cgroup"], hostname="warm-one")
    assert done["exit_code"] == 0, done
    assert hits(client) == before + 1
    out = logs(client, done["id"])
    assert out.splitlines()[0] == "warm-one"
    # The pooled child's cgroups (and devices cgroup) were renamed to the
    # container's id before its command's first instruction.
    assert_in_its_cgroups(done["id"], "\n".join(out.splitlines()[1:]))


def test_a_pooled_child_sees_nothing_of_an_earlier_container(client: httpx.Client) -> None:
    wait_ready(client)
    before = hits(client)
    first = run(
        client,
        [
            "sh",
            "-c",
            "echo a > /tmp/left; echo a > /dev/shm/left; echo a > /run/left; "
            "sleep 300 & echo $! > /tmp/pid",
        ],
        hostname="first",
    )
    assert first["exit_code"] == 0, first
    wait_ready(client)
    second = run(
        client,
        ["sh", "-c", "ls -A /tmp /dev/shm /run; hostname; ps -e -o comm="],
    )
    assert hits(client) == before + 2
    out = logs(client, second["id"]).split()
    assert "left" not in out and "pid" not in out
    assert "first" not in out and second["id"][:12] in out
    assert "sleep" not in out  # the earlier container's background process


def test_counters_start_at_zero_and_limits_apply(client: httpx.Client) -> None:
    wait_ready(client)
    busy = run(client, ["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
    assert busy["cpu_seconds"] > 0.05, busy
    wait_ready(client)
    before = hits(client)
    idle = run(client, ["true"])
    assert hits(client) == before + 1
    # Fresh counters: none of the earlier container's CPU, none of the fill.
    assert idle["cpu_seconds"] < 0.05, idle
    wait_ready(client)
    before = hits(client)
    hog = run(
        client,
        ["python3", "-c", "data = b'x' * (256 << 20)"],
        limits={"memory_bytes": 64 << 20, "pids": 16},
    )
    assert hits(client) == before + 1
    assert hog["oom_killed"] is True and hog["signal"] == "SIGKILL", hog
    assert hog["memory_peak_bytes"] <= 64 << 20


def test_a_ready_childs_counters_are_reset_before_its_claim(
    pooled: Service, client: httpx.Client
) -> None:
    """Its fill (several ms of CPU building its root) is not its
    container's: the counters are reset when it says READY, and parked, it
    adds nothing until its claim (runtime/launcher/pool.py, ``_reset``)."""
    wait_ready(client)
    launcher = pooled.launcher_pid()
    assert launcher is not None
    usage = {
        path: int(Path(path, "cpuacct.usage").read_text())
        for path in pool_cgroups(pooled.state_dir, launcher)
        if os.path.exists(os.path.join(path, "cpuacct.usage"))
    }
    assert len(usage) >= POOL, usage
    # A few µs at most: the child's return from its READY send to recv(2).
    assert all(ns < 500_000 for ns in usage.values()), usage


def cgroup_limits(state_dir: Path, container_id: str) -> tuple[int, str, str]:
    """A running container's memory limit, pids.max and CFS quota, read on the host."""
    manager = cgroups.manager(os.fspath(state_dir))
    assert isinstance(manager, cgroups.V1Manager)
    dirs = manager.open(container_id).dirs

    def read(controller: str, name: str) -> str:
        return Path(dirs[controller], name).read_text().strip()

    memory = int(read("memory", "memory.limit_in_bytes"))
    return memory, read("pids", "pids.max"), read("cpu", "cpu.cfs_quota_us")


def test_a_pooled_containers_limits_are_its_own(pooled: Service, client: httpx.Client) -> None:
    """A claim writes the limits its container asks for, and only those,
    into cgroups made fresh at the fill: none carry over to the next."""
    seen = []
    for limits in ({"memory_bytes": 64 << 20, "pids": 16, "cpus": 0.5}, {}):
        wait_ready(client)
        before = hits(client)
        created = client.post("/containers", json={"command": ["sleep", "30"], "limits": limits})
        assert created.status_code == 201, created.text
        ref = created.json()["id"]
        assert hits(client) == before + 1
        seen.append(cgroup_limits(pooled.state_dir, ref))
        assert client.delete(f"/containers/{ref}", params={"force": "true"}).status_code == 204
    limited, unlimited = seen
    assert limited == (64 << 20, "16", "50000")
    assert unlimited[0] > 1 << 40 and unlimited[1:] == ("max", "-1"), unlimited


def test_a_spec_the_pool_cannot_serve_takes_the_cold_path(client: httpx.Client) -> None:
    before = scrape(client)
    # An overlay root on a tmpfs (read-only): not pooled.
    done = run(client, ["true"], image="busybox", read_only=True)
    assert done["exit_code"] == 0, done
    after = scrape(client)
    assert after['mydocker_pool_claims_total{outcome="miss"}'] == (
        before['mydocker_pool_claims_total{outcome="miss"}'] + 1
    )
    assert (
        after['mydocker_pool_claims_total{outcome="hit"}']
        == (before['mydocker_pool_claims_total{outcome="hit"}'])
    )


def test_a_spec_that_would_write_into_the_shared_root_takes_the_cold_path(
    client: httpx.Client,
) -> None:
    """A pooled child holds one copy of the whole root, as a cold child of
    the default spec does; a workdir that must be made in the root's tmpfs
    cannot share it, so that launch goes cold, and leaves nothing in the
    root of the pooled launch after it."""
    wait_ready(client)
    before = scrape(client)
    made = run(client, ["pwd"], workdir="/data")
    assert made["exit_code"] == 0, made
    assert logs(client, made["id"]).split() == ["/data"]
    after = scrape(client)
    for outcome, more in (("hit", 0), ("miss", 1)):
        name = f'mydocker_pool_claims_total{{outcome="{outcome}"}}'
        assert after[name] == before[name] + more
    wait_ready(client)
    pooled_one = run(client, ["ls", "-A", "/"])
    assert hits(client) == after['mydocker_pool_claims_total{outcome="hit"}'] + 1
    assert "data" not in logs(client, pooled_one["id"]).split()


def test_pool_memory_and_fds_per_child_are_reported(client: httpx.Client) -> None:
    wait_ready(client)
    values = scrape(client)
    assert 0 < values["mydocker_pool_child_rss_bytes"] < 256 << 20
    # 0/1/2, the sync pipe, the error pipe, the channel: nothing of the launcher's.
    assert values["mydocker_pool_child_fds"] == 6


def full(service: Service, client: httpx.Client) -> tuple[int, set[int], set[int]]:
    """Once the pool is full: the launcher, its pooled children, its zygote."""
    wait_ready(client)
    launcher = service.launcher_pid()
    assert launcher is not None
    children, zygote = pooled_children(launcher)
    assert len(children) == POOL
    assert len(zygote) == 1, zygote
    return launcher, children, zygote


def test_sigkill_of_the_launcher_leaks_no_pooled_child_or_cgroup(
    own_service: Service,
) -> None:
    own_service.extra_args = list(ARGS)
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        launcher, children, zygote = full(own_service, client)
        assert len(pool_cgroups(own_service.state_dir, launcher)) >= POOL
        ref = client.post("/containers", json={"command": ["sleep", "1"]}).json()["id"]
        own_service.stop_launcher()
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{pid}") for pid in children | zygote):
            assert time.monotonic() < deadline, "pooled children or zygote outlived the launcher"
            time.sleep(0.05)
        # The API starts a new launcher, whose start-up removes the old pool's
        # cgroups; the exit of the container running then is not lost.
        done = client.post(f"/containers/{ref}/wait", params={"timeout": 30}).json()
        assert done["status"] == "exited", done
        while pool_cgroups(own_service.state_dir, launcher):
            assert time.monotonic() < deadline, pool_cgroups(own_service.state_dir, launcher)
            time.sleep(0.05)
        wait_ready(client)
        before = hits(client)
        assert run(client, ["true"])["exit_code"] == 0
        assert hits(client) == before + 1


def test_the_zygotes_death_is_noticed_the_launcher_fills_by_itself_then_starts_another(
    own_service: Service,
) -> None:
    """The zygote (runtime/launcher/zygote.py) clones the pool's children;
    killed, it is reaped (no zombie), the launcher clones the next children
    itself (launches keep being served by pooled children), and a fill at
    least RESTART_DELAY after the death starts a new zygote."""
    own_service.extra_args = list(ARGS)
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        launcher, children, zygotes = full(own_service, client)
        (zygote,) = zygotes
        os.kill(zygote, 9)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{zygote}"):  # a zombie until the launcher reaps it
            assert time.monotonic() < deadline, "the dead zygote was not reaped"
            time.sleep(0.05)
        before = hits(client)
        for _ in range(POOL + 2):  # the zygote's children, then the launcher's
            wait_ready(client)
            assert run(client, ["true"])["exit_code"] == 0
        assert hits(client) == before + POOL + 2
        now, _ = pooled_children(launcher)
        assert not now & children
        deadline = time.monotonic() + 30
        while True:  # the next fills, a second after the death, start another
            wait_ready(client)
            assert run(client, ["true"])["exit_code"] == 0
            _, zygotes = pooled_children(launcher)
            if zygotes:
                break
            assert time.monotonic() < deadline, "no zygote was started again"
            time.sleep(0.2)
        assert zygotes != {zygote}
        assert own_service.launcher_pid() == launcher
    log = (own_service.state_dir / "launcher.log").read_text()
    assert "the pool clones its children itself" in log
    assert "zygote started again (start 2 of 5)" in log


MISS = 'mydocker_pool_claims_total{outcome="miss"}'
INSIDE = (
    "echo $$; pwd; grep SigIgn /proc/self/status; echo --; ls /proc/self/fd; echo --; "
    "ls /proc | grep -c '^[0-9]'; echo --; cat /proc/self/cgroup; echo --; "
    "readlink /proc/self/ns/pid"
)


def wakeups(pid: int) -> int:
    """How often ``pid`` went to sleep (proc(5): voluntary_ctxt_switches):
    the idle zygote sleeps in recvmsg(2) again after each request."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


def settled(pid: int) -> int:
    """``wakeups`` once the zygote is idle (the fill's reply just went out)."""
    count = wakeups(pid)
    for _ in range(50):
        time.sleep(0.1)
        count, last = wakeups(pid), count
        if count == last:
            return count
    raise AssertionError("the zygote never went idle")


# -- cold containers cloned by the zygote (zygote.py ``send_cold``; spawn.py
# ``Spawner._cloned``): a launch the pool cannot serve (a workdir to make in
# the root) is what a cold container cloned by the launcher is; without a
# pool there is no zygote and the launcher clones (test_pool_cold.py).
def test_a_cold_launch_is_cloned_by_the_zygote_and_runs_as_one_cloned_here(
    pooled: Service, client: httpx.Client
) -> None:
    wait_ready(client)  # full: a miss owes no fill
    launcher = pooled.launcher_pid()
    assert launcher is not None
    _children, zygotes = pooled_children(launcher)
    (zygote,) = zygotes
    before, misses = settled(zygote), scrape(client)[MISS]
    done = run(client, ["sh", "-c", INSIDE], workdir="/data")
    assert done["exit_code"] == 0, done
    assert scrape(client)[MISS] == misses + 1
    assert wakeups(zygote) > before  # the zygote served it
    head, fds, procs, cgroup, ns = logs(client, done["id"]).split("--\n")
    pid1, cwd, sig_ign = head.splitlines()
    assert (pid1, cwd, sig_ign.split()) == ("1", "/data", ["SigIgn:", "0000000000000000"])
    assert fds.split() == ["0", "1", "2", "3"]  # 3: ls's own of /proc/self/fd
    assert procs.split() == ["3"]  # a fresh /proc: the shell, ls and grep
    lines = cgroup.splitlines()
    assert lines and all(done["id"] in line for line in lines if ":memory:" in line)
    assert any(":memory:" in line for line in lines)  # its own cgroups
    assert ns.strip() != os.readlink("/proc/self/ns/pid")
