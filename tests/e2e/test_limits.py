"""Limits, timeouts and accounting on real containers (cgroup v1 on this machine).

Every test here checks an outcome the limit causes (an OOM kill, a held fork
bomb, a CPU ratio, a kill at the deadline, cut logs) and would fail without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from runtime import cgroups
from tests.e2e import slow_join
from tests.e2e.conftest import ROOT, Service, free_port, logs, run
from tests.e2e.helpers import eventually

MiB = 1 << 20


def cgroup_paths(state_dir: os.PathLike[str], container_id: str) -> list[str]:
    manager = cgroups.manager(os.fspath(state_dir))
    assert manager is not None, "no cgroups mounted"
    return manager.open(container_id).paths


def test_a_normal_run_reports_what_it_took(client: httpx.Client) -> None:
    done = run(client, ["sh", "-c", "echo hi"])
    assert done["exit_code"] == 0
    assert done["oom_killed"] is False
    assert done["timed_out"] is False
    assert done["output_truncated"] is False
    assert done["cpu_seconds"] >= 0
    assert done["memory_peak_bytes"] > 0
    assert 0 < done["wall_seconds"] < 60


def test_memory_hog_is_oom_killed_and_says_so(client: httpx.Client) -> None:
    hog = ["python3", "-c", "data = b'x' * (256 << 20)"]
    done = run(client, hog, limits={"memory_bytes": 64 * MiB})
    assert done["signal"] == "SIGKILL"
    assert done["oom_killed"] is True
    assert done["memory_peak_bytes"] <= 64 * MiB
    assert done["limits"]["memory_bytes"] == 64 * MiB


def test_a_bare_sigkill_is_not_an_oom(client: httpx.Client) -> None:
    body = {"command": ["sleep", "30"], "limits": {"memory_bytes": 64 * MiB}}
    ref = client.post("/containers", json=body).json()["id"]
    assert client.post(f"/containers/{ref}/kill", params={"signal": "SIGKILL"}).status_code == 200
    done = client.post(f"/containers/{ref}/wait").json()
    assert done["exit_code"] == 137
    assert done["oom_killed"] is False


FORK_BOMB = """
import os, time
while True:
    try:
        os.fork()  # parent and child both go on forking
    except OSError:
        time.sleep(0.05)
"""


def test_fork_bomb_is_held_by_pids_and_the_host_stays_responsive(
    client: httpx.Client, service
) -> None:
    response = client.post(
        "/containers",
        json={
            "command": ["python3", "-c", FORK_BOMB],
            "limits": {"pids": 32, "timeout_seconds": 4},
        },
    )
    assert response.status_code == 201, response.text
    ref = response.json()["id"]
    paths = cgroup_paths(service.state_dir, ref)
    seen = []
    while True:
        stats = client.get(f"/containers/{ref}/stats")
        if stats.status_code == 409:
            break
        seen.append(stats.json()["pids"])
        assert client.get("/health").status_code == 200
        assert subprocess.run(["true"], timeout=30).returncode == 0  # the host can fork
        time.sleep(0.2)
    assert seen, "never saw it running"
    assert max(seen) <= 32
    assert 32 in seen  # the bomb filled the limit: the limit is what held it
    done = client.post(f"/containers/{ref}/wait").json()
    assert done["timed_out"] is True
    # The launcher removes an exit's cgroups once that turn's exit events are out.
    eventually(lambda: not any(os.path.exists(p) for p in paths), 10, "the cgroups removed")


def test_cpus_half_gives_a_busy_loop_about_half_a_core(client: httpx.Client) -> None:
    busy = ["sh", "-c", "while :; do :; done"]
    done = run(client, busy, limits={"cpus": 0.5, "timeout_seconds": 3})
    assert done["timed_out"] is True
    ratio = done["cpu_seconds"] / done["wall_seconds"]
    # Tolerant (the machine is shared), yet a full core (1.0) fails.
    assert 0.2 < ratio < 0.75, ratio


@pytest.mark.parametrize(
    "command",
    [
        ["sleep", "30"],
        # PID 1 and its children ignore SIGTERM and SIGINT; the kill must still get them all.
        [
            "sh",
            "-c",
            "trap '' TERM INT HUP; (trap '' TERM INT HUP; sleep 30.4242) & "
            "(trap '' TERM INT HUP; sleep 30.4243 & wait) & sleep 30.4244",
        ],
    ],
    ids=["sleep", "children-ignoring-signals"],
)
def test_timeout_kills_the_whole_container(client: httpx.Client, command: list[str]) -> None:
    done = run(client, command, limits={"timeout_seconds": 1})
    assert done["timed_out"] is True
    assert done["signal"] == "SIGKILL"
    assert 1 <= done["wall_seconds"] < 20  # killed at the deadline, long before 30 s
    left = subprocess.run(["pgrep", "-f", "sleep 30.424"], capture_output=True, text=True)
    assert left.stdout == "", "a child survived the timeout"


def test_output_bytes_truncates_and_marks(client: httpx.Client) -> None:
    flood = ["sh", "-c", "while :; do echo 0123456789abcdef; done"]
    done = run(client, flood, limits={"output_bytes": 10000, "timeout_seconds": 30})
    assert done["output_truncated"] is True
    assert done["timed_out"] is False
    assert done["signal"] == "SIGKILL"
    text = logs(client, done["id"])
    assert len(text) == 10000
    assert text.startswith("0123456789abcdef\n0123456789abcdef\n")


def test_output_under_the_cap_is_kept_whole(client: httpx.Client) -> None:
    done = run(client, ["sh", "-c", "echo out; echo err >&2"], limits={"output_bytes": 8})
    assert done["output_truncated"] is False
    assert done["exit_code"] == 0
    assert logs(client, done["id"]) == "out\nerr\n"


def test_nofile_and_fsize_are_rlimits_of_the_command(client: httpx.Client) -> None:
    command = ["sh", "-c", "ulimit -n; ulimit -f; head -c 3000000 /dev/zero >/dev/stderr"]
    done = run(client, command, limits={"nofile": 64, "fsize_bytes": MiB})
    # dash's `ulimit -f` counts 512-byte blocks; head died of SIGXFSZ (25): sh says 128+25.
    assert logs(client, done["id"], stream="stdout") == f"64\n{MiB // 512}\n"
    assert done["exit_code"] == 128 + 25
    assert len(logs(client, done["id"], stream="stderr")) == MiB


#: The hierarchies a container joins on this host (cgroup v1): the
#: launcher's four (runtime/cgroups/v1.py) and the devices cgroup
#: (runtime/security/devices.py).
JOINED = ("memory", "pids", "cpu", "cpuacct", "devices")


def joined_cgroups(proc_self_cgroup: str) -> dict[str, str]:
    """controller -> cgroup path, from ``/proc/PID/cgroup`` (cgroups(7))."""
    paths = {}
    for line in proc_self_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def assert_in_its_cgroups(container_id: str, proc_self_cgroup: str) -> None:
    paths = joined_cgroups(proc_self_cgroup)
    for controller in JOINED:
        assert paths.get(controller, "").rsplit("/", 1)[-1] == container_id, (
            controller,
            proc_self_cgroup,
        )


@pytest.fixture(scope="module")
def slow_join_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose launcher takes DELAY_SECONDS to join each child to
    its cgroups (tests/e2e/slow_join.py): the API finds its socket and uses
    it instead of starting its own."""
    state = tmp_path_factory.mktemp("slowjoin") / "state"
    state.mkdir()
    with open(state.parent / "launcher.log", "ab") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.slow_join", "--state-dir", str(state)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # The cold path's join: a pooled child is joined before it is claimed
    # (tests/e2e/test_pool.py checks the command's cgroups there).
    svc = Service(state_dir=state, port=free_port(), extra_args=["--pool-size", "0"])
    try:
        deadline = time.monotonic() + 20
        while not (state / "launcher.sock").exists():
            assert launcher.poll() is None, "the slow-join launcher exited"
            assert time.monotonic() < deadline, "the slow-join launcher did not come up"
            time.sleep(0.05)
        svc.start()
        yield svc
    finally:
        svc.stop()
        launcher.kill()
        launcher.wait()
        svc.kill_leftovers()


@pytest.fixture
def slow_client(slow_join_service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slow_join_service.url, timeout=60) as c:
        yield c


# The launcher joins a container to its cgroups while the child builds its
# root, and the child waits for the "joined" byte before anything it does for
# the command (runtime/child.py, JOINED_BYTE).  The command's first
# instruction reads its own cgroups; with the join slowed down to 0.3 s, a
# command that did not wait for it would see the launcher's cgroups.
@pytest.mark.parametrize("userns", [False, True])
def test_the_command_starts_inside_every_cgroup(slow_client: httpx.Client, userns: bool) -> None:
    started = time.monotonic()
    done = run(slow_client, ["cat", "/proc/self/cgroup"], userns=userns)
    assert time.monotonic() - started >= slow_join.DELAY_SECONDS  # the slow launcher ran it
    assert done["exit_code"] == 0, done
    assert_in_its_cgroups(str(done["id"]), logs(slow_client, str(done["id"])))


def test_a_created_then_started_container_starts_inside_every_cgroup(
    slow_client: httpx.Client,
) -> None:
    # Docker's create, then start: cloned and joined at create, released at start.
    body = {"Image": "busybox", "Cmd": ["cat", "/proc/self/cgroup"]}
    created = slow_client.post("/v1.43/containers/create", json=body)
    assert created.status_code == 201, created.text
    ref = created.json()["Id"]
    assert slow_client.get(f"/containers/{ref}").json()["status"] == "created"
    started = slow_client.post(f"/v1.43/containers/{ref}/start")
    assert started.status_code == 204, started.text
    waited = slow_client.post(f"/v1.43/containers/{ref}/wait")
    assert waited.json()["StatusCode"] == 0, waited.text
    assert_in_its_cgroups(ref, logs(slow_client, ref))


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"memory_bytes": 0}, "memory_bytes"),
        ({"memory_bytes": 1 << 50}, "memory_bytes"),
        ({"pids": -1}, "pids"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": 1000}, "cpus"),  # more CPUs than the machine has
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"output_bytes": 0}, "output_bytes"),
        ({"nofile": 2}, "nofile"),
        ({"fsize_bytes": 0}, "fsize_bytes"),
        ({"pids": "many"}, "pids"),
        ({"swap": 1}, "swap"),
    ],
)
def test_limits_out_of_range_are_422_naming_the_field(
    client: httpx.Client, limits: dict[str, object], field: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], "limits": limits})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "limits", field]]


def test_stats_while_running_then_409_and_no_cgroup_left_after_delete(
    client: httpx.Client, service
) -> None:
    response = client.post(
        "/containers",
        json={
            "command": ["sh", "-c", "sleep 30 & sleep 30 & wait"],
            "limits": {"memory_bytes": 64 * MiB},
        },
    )
    ref = response.json()["id"]
    paths = cgroup_paths(service.state_dir, ref)
    assert paths and all(os.path.isdir(p) for p in paths)
    deadline = time.monotonic() + 30
    while True:  # until sh has forked both sleeps
        stats = client.get(f"/containers/{ref}/stats")
        assert stats.status_code == 200, stats.text
        body = stats.json()
        if body["pids"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["pids"] == 3  # sh and its two sleeps
    assert body["memory_bytes"] >= 0 and body["cpu_seconds"] >= 0
    assert client.delete(f"/containers/{ref}", params={"force": "true"}).status_code == 204
    eventually(lambda: not any(os.path.exists(p) for p in paths), 10, "the cgroups removed")
    assert client.get(f"/containers/{ref}/stats").status_code == 404


def test_stats_of_an_exited_container_is_409(client: httpx.Client) -> None:
    done = run(client, ["true"])
    assert client.get(f"/containers/{done['id']}/stats").status_code == 409


def test_service_wide_default_limits(own_service) -> None:
    own_service.extra_args = ["--default-limits", '{"timeout_seconds": 1, "pids": 50}']
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        done = run(client, ["sleep", "30"])
        assert done["timed_out"] is True
        assert done["limits"]["pids"] == 50
        mine = run(client, ["true"], limits={"timeout_seconds": 20})
        assert mine["limits"]["timeout_seconds"] == 20
        assert mine["limits"]["pids"] == 50


def test_a_new_launcher_removes_the_cgroups_a_dead_one_left(own_service) -> None:
    """The launcher died (SIGKILL): its containers can be neither reaped nor
    reported.  The launcher the service starts next kills what is in their
    cgroups and removes them."""
    # No pool: its children's cgroups would keep the parent (test_pool.py
    # checks that a dead launcher's pooled cgroups go).
    own_service.extra_args = ["--pool-size", "0"]
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        body = {"command": ["sleep", "30.4245"], "limits": {"pids": 8}}
        ref = client.post("/containers", json=body).json()["id"]
        paths = cgroup_paths(own_service.state_dir, ref)
        assert all(os.path.isdir(p) for p in paths)
        own_service.stop_launcher()
        deadline = time.monotonic() + 30
        while any(os.path.exists(p) for p in paths) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(os.path.exists(p) for p in paths)
        manager = cgroups.manager(os.fspath(own_service.state_dir))
        assert manager is not None
        # Nothing runs, so the parent goes too: the launcher removes it in a
        # later turn of its loop than the containers' cgroups.
        parents = manager.parent_dirs()
        while any(os.path.exists(p) for p in parents) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(os.path.exists(p) for p in parents)
        left = subprocess.run(["pgrep", "-f", "sleep 30.4245"], capture_output=True, text=True)
        assert left.stdout == ""
        done = client.post(f"/containers/{ref}/wait", params={"timeout": 30}).json()
        assert done["status"] == "exited"


def test_a_container_paused_when_its_launcher_died_is_killed_and_its_cgroups_go(
    own_service,
) -> None:
    """v1's freezer keeps a frozen task from dying of SIGKILL: the next
    launcher's start-up thaws a dead launcher's paused container before it
    kills it, then removes its cgroups."""
    own_service.extra_args = ["--pool-size", "0"]
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        ref = client.post("/containers", json={"command": ["sleep", "30.5173"]}).json()["id"]
        paused = client.post(f"/containers/{ref}/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
    paths = cgroup_paths(own_service.state_dir, ref)
    freezer = [p for p in paths if "/freezer/" in p]
    assert freezer, paths
    with open(os.path.join(freezer[0], "freezer.state")) as f:
        assert f.read().strip() == "FROZEN"
    own_service.stop()
    own_service.stop_launcher()
    own_service.start()  # its launcher's start-up cleans up
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        done = client.post(f"/containers/{ref}/wait", params={"timeout": 30}).json()
        assert done["status"] == "exited", done
    deadline = time.monotonic() + 30
    while any(os.path.exists(p) for p in paths) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(p) for p in paths)
    left = subprocess.run(["pgrep", "-f", "sleep 30.5173"], capture_output=True, text=True)
    assert left.stdout == ""


def _cgroupfs_fds(pid: int) -> int:
    """How many of ``pid``'s fds are on a cgroup v1 filesystem (stat -f)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        kind = subprocess.run(
            ["stat", "-L", "-f", "-c", "%T", f"/proc/{pid}/fd/{fd}"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        count += kind == "cgroupfs"
    return count


@pytest.mark.parametrize(("args", "held"), [([], 0), (["--cgroup-favordynmods"], 1)])
def test_the_launcher_holds_a_favordynmods_hierarchy_when_asked_to(
    own_service, args: list[str], held: int
) -> None:
    """runtime/cgroups/dynmods.py: the launcher holds a detached
    ``name=mydocker,favordynmods`` hierarchy by an fd, for its lifetime."""
    own_service.extra_args = ["--pool-size", "0", *args]
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        assert run(client, ["true"])["exit_code"] == 0
    launcher = own_service.launcher_pid()
    assert launcher is not None
    assert _cgroupfs_fds(launcher) == held
    if held:
        with open(f"/proc/{launcher}/cgroup") as f:
            assert ":name=mydocker:/" in f.read()
