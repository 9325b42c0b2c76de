"""Cold containers cloned by the warm pool's zygote (runtime/launcher/zygote.py,
``send_cold``; spawn.py, ``Spawner._cloned``), over HTTP with real containers.

A launch the pool cannot serve (here: a workdir to make in the root, which a
pooled child's shared root cannot take) is cloned by the zygote once it is
ready; its wake-ups show that it did, and the container is what a cold one
cloned by the launcher is: pid 1 of its own namespaces, its own cgroups,
nothing ignored, no fd of ours, a fresh /proc.  The default pool's misses in
the rest of the suite take the same way (tests/e2e/test_pool_cold.py keeps
the launcher's own clone, without a pool, under test).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.test_metrics import scrape
from tests.e2e.test_pool import pool_client, pool_service, pooled_children, wait_ready

ARGS = ["--pool-size", "1", "--pool-images="]
MISS = 'mydocker_pool_claims_total{outcome="miss"}'
INSIDE = (
    "echo $$; pwd; grep SigIgn /proc/self/status; echo --; ls /proc/self/fd; echo --; "
    "ls /proc | grep -c '^[0-9]'; echo --; cat /proc/self/cgroup; echo --; "
    "readlink /proc/self/ns/pid"
)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from pool_service(tmp_path_factory, ARGS)


@pytest.fixture
def client(pooled: Service) -> Iterator[httpx.Client]:
    yield from pool_client(pooled)


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


def test_a_cold_launch_is_cloned_by_the_zygote_and_runs_as_one_cloned_here(
    pooled: Service, client: httpx.Client
) -> None:
    wait_ready(client, count=1)  # full: a miss owes no fill
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
