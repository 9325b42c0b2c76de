"""Docker's create options (runtime/options.py), end to end with the real
``docker`` CLI and real containers: each option is checked where the kernel
shows it (the cgroup's files, /proc inside the container, the namespaces),
and inspect shows back what was set.  The native ``options`` field is
checked over HTTP alike (test_native_options_*).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker as docker_py
import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.docker_helpers import IMAGE, Docker, docker_runner
from tests.e2e.helpers import eventually, unique


@pytest.fixture
def docker(service: Service, tmp_path: Path) -> Iterator[Docker]:
    names: list[str] = []

    run = docker_runner(service, tmp_path)

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("run",) and "--name" in args:
            names.append(args[args.index("--name") + 1])
        return run(*args, **kwargs)

    yield call
    for name in names:
        run("rm", "-f", name)


def _cgroup_dir(pid: int, controller: str) -> str:
    """The container's directory in a v1 hierarchy, from /proc/PID/cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return f"/sys/fs/cgroup/{controller}{path}"
    raise AssertionError(f"{pid} is in no {controller} cgroup")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _started(docker: Docker, *args: str) -> tuple[str, dict[str, Any]]:
    name = unique("opt")
    result = docker("run", "-d", "--name", name, *args, IMAGE, "sleep", "300")
    assert result.returncode == 0, result.stderr
    inspected = json.loads(docker("inspect", name).stdout)[0]
    return name, inspected


def _own_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def _exec(docker: Docker, name: str, script: str) -> str:
    result = docker("exec", name, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cpu_and_memory_knobs_reach_the_cgroup_files(docker: Docker) -> None:
    name, inspected = _started(
        docker,
        "--cpu-shares",
        "512",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
    )
    pid = inspected["State"]["Pid"]
    cpu, memory, cpuset = (_cgroup_dir(pid, c) for c in ("cpu", "memory", "cpuset"))
    assert _read(f"{cpu}/cpu.shares") == "512"
    assert _read(f"{cpu}/cpu.cfs_quota_us") == "50000"
    assert _read(f"{cpu}/cpu.cfs_period_us") == "200000"
    assert _read(f"{cpuset}/cpuset.cpus") == "0"
    assert _read(f"{cpuset}/cpuset.mems") == "0"
    assert _read(f"{memory}/memory.limit_in_bytes") == str(64 << 20)
    assert _read(f"{memory}/memory.memsw.limit_in_bytes") == str(128 << 20)
    assert _read(f"{memory}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert _read(f"{memory}/memory.swappiness") == "10"
    # The process itself may only run on CPU 0.
    assert _exec(docker, name, "grep Cpus_allowed_list /proc/self/status").split()[-1] == "0"
    host = inspected["HostConfig"]
    assert (host["CpuShares"], host["CpuQuota"], host["CpuPeriod"]) == (512, 50000, 200000)
    assert (host["CpusetCpus"], host["CpusetMems"]) == ("0", "0")
    assert (host["MemorySwap"], host["MemoryReservation"]) == (128 << 20, 32 << 20)
    assert host["MemorySwappiness"] == 10
    docker("rm", "-f", name)
    assert not os.path.exists(cpuset), "the cpuset cgroup outlived its container"


def test_group_add_ulimit_sysctl_shm_size_in_the_container(docker: Docker) -> None:
    name, inspected = _started(
        docker,
        "--group-add",
        "1234",
        "--group-add",
        "nobody",
        "--ulimit",
        "nproc=100:200",
        "--ulimit",
        "core=-1",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=123456789",
        "--shm-size",
        "8m",
        "--tmpfs",
        "/scratch:size=1m",
        "--read-only",
    )
    audio = "65534"  # nobody, in the busybox image's /etc/group
    # docker exec runs with the container's supplementary groups too.
    assert set(_exec(docker, name, "id -G").split()) >= {"1234", audio}
    status = _exec(docker, name, "cat /proc/1/status")
    groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
    assert set(groups.split()[1:]) == {"1234", audio}
    limits = _exec(docker, name, "cat /proc/1/limits")
    assert "Max processes             100                  200" in limits
    assert "Max core file size        unlimited            unlimited" in limits
    assert _exec(docker, name, "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert _exec(docker, name, "cat /proc/sys/kernel/shmmax").strip() == "123456789"
    # Its own namespaces: the host's values did not change.
    assert _read("/proc/sys/kernel/shmmax") != "123456789"
    mounts = _exec(docker, name, "cat /proc/mounts")
    shm = next(line for line in mounts.splitlines() if " /dev/shm " in line)
    assert "size=8192k" in shm
    scratch = next(line for line in mounts.splitlines() if " /scratch " in line)
    assert "size=1024k" in scratch
    refused = docker("exec", name, "touch", "/file")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    host = inspected["HostConfig"]
    assert set(host["GroupAdd"]) == {"1234", "nobody"}
    assert {"Name": "nproc", "Soft": 100, "Hard": 200} in host["Ulimits"]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
    assert host["ShmSize"] == 8 << 20
    assert host["Tmpfs"] == {"/scratch": "size=1m"}  # as given, as Docker shows it
    assert host["ReadonlyRootfs"] is True
    assert host["Isolation"] == "" and host["CgroupnsMode"] == "private"


def test_sysctls_outside_the_containers_namespaces_are_refused(
    docker: Docker, client: httpx.Client
) -> None:
    # The CLI refuses kernel.panic itself; the service does too.
    body = {"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"Sysctls": {"kernel.panic": "1"}}}
    refused = client.post("/v1.47/containers/create", json=body)
    assert refused.status_code == 400
    assert "kernel.panic" in refused.json()["message"]
    assert "not namespaced" in refused.json()["message"]
    shared = docker("run", "--rm", "--ipc", "host", "--sysctl", "kernel.shmmax=1", IMAGE, "true")
    assert shared.returncode == 125 and "kernel.shmmax" in shared.stderr


def test_host_namespaces_are_shared_not_made(docker: Docker) -> None:
    name, inspected = _started(docker, "--pid", "host", "--ipc", "host", "--uts", "host")
    pid = inspected["State"]["Pid"]
    for ns in ("pid", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}")
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert _exec(docker, name, "hostname").strip() == socket.gethostname()
    # The host's processes are visible: this test's own among them.
    # The host's pid namespace: this test's own process is there.  (Not `ls /proc`:
    # a host process that exits between its readdir and its stat fails the ls.)
    assert _exec(docker, name, f"cat /proc/{os.getpid()}/comm").strip() == _own_comm()
    host = inspected["HostConfig"]
    assert (host["PidMode"], host["IpcMode"], host["UTSMode"]) == ("host", "host", "host")
    conflict = docker("run", "--rm", "--uts", "host", "--hostname", "x", IMAGE, "true")
    assert conflict.returncode == 125 and "hostname" in conflict.stderr


def test_devices_and_device_cgroup_rules(docker: Docker) -> None:
    name, inspected = _started(
        docker, "--device", "/dev/fuse:/dev/myfuse:rw", "--device-cgroup-rule", "c 42:* rmw"
    )
    listed = _exec(docker, name, "ls -l /dev/myfuse")
    assert listed.startswith("c") and listed.split()[4:6] == ["10,", "229"]
    rules = _read(os.path.join(_cgroup_dir(inspected["State"]["Pid"], "devices"), "devices.list"))
    assert "c 10:229 rw" in rules.splitlines() and "c 42:* rwm" in rules.splitlines()
    # Opening it passes the devices cgroup: the fuse driver answers, not EPERM.
    opened = docker("exec", name, "sh", "-c", "exec 3</dev/myfuse && echo opened")
    assert opened.stdout == "opened\n", opened.stderr
    devices = inspected["HostConfig"]["Devices"]
    assert devices == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/myfuse", "CgroupPermissions": "rw"}
    ]
    assert inspected["HostConfig"]["DeviceCgroupRules"] == ["c 42:* rmw"]


def test_stop_signal_and_stop_timeout(docker: Docker) -> None:
    name = unique("stopsig")
    script = "trap 'exit 7' USR1; trap 'echo term' TERM; echo ready; while :; do sleep 0.1; done"

    def traps_set(container: str) -> None:
        # A signal that comes before the trap meets sh as pid 1 with no handler,
        # which ignores it (pid_namespaces(7)): wait for the word, not a time.
        eventually(lambda: "ready" in docker("logs", container).stdout, what="the traps")

    started = docker(
        "run", "-d", "--name", name, "--stop-signal", "SIGUSR1", IMAGE, "sh", "-c", script
    )
    assert started.returncode == 0, started.stderr
    traps_set(name)
    assert docker("stop", name).returncode == 0
    inspected = json.loads(docker("inspect", name).stdout)[0]
    assert inspected["State"]["ExitCode"] == 7
    assert inspected["Config"]["StopSignal"] == "SIGUSR1"

    # A handler that does not exit: SIGKILL after StopTimeout, not after 10 s.
    slow = unique("stoptime")
    started = docker("run", "-d", "--name", slow, "--stop-timeout", "1", IMAGE, "sh", "-c", script)
    assert started.returncode == 0, started.stderr
    traps_set(slow)
    began = time.monotonic()
    assert docker("stop", slow).returncode == 0
    assert time.monotonic() - began < 8
    inspected = json.loads(docker("inspect", slow).stdout)[0]
    assert inspected["State"]["ExitCode"] == 137
    assert inspected["Config"]["StopTimeout"] == 1


def test_log_drivers(docker: Docker) -> None:
    quiet = unique("nolog")
    result = docker("run", "--name", quiet, "--log-driver", "none", IMAGE, "echo", "hidden")
    assert result.returncode == 0, result.stderr
    shown = docker("logs", quiet)
    assert shown.stdout == ""
    inspected = json.loads(docker("inspect", quiet).stdout)[0]
    assert inspected["HostConfig"]["LogConfig"]["Type"] == "none"
    kept = unique("local")
    result = docker("run", "--name", kept, "--log-driver", "local", IMAGE, "echo", "kept")
    assert result.returncode == 0, result.stderr
    assert docker("logs", kept).stdout == "kept\n"
    refused = docker("run", "--rm", "--log-driver", "syslog", IMAGE, "true")
    assert refused.returncode == 125
    assert "logger: no log driver named 'syslog' is registered" in refused.stderr


def test_native_options_field(client: httpx.Client) -> None:
    done = run(
        client,
        ["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; id -G; ulimit -s"],
        image="busybox",
        options={
            "sysctls": {"net.ipv4.ip_forward": "1"},
            "group_add": ["4321"],
            "ulimits": [{"name": "stack", "soft": 4 << 20, "hard": 8 << 20}],
        },
    )
    assert done["exit_code"] == 0, done
    assert logs(client, done["id"]).split() == ["1", "0", "4321", "4096"]
    refused = client.post(
        "/containers", json={"command": ["true"], "options": {"sysctls": {"vm.swappiness": "1"}}}
    )
    assert refused.status_code == 422 and "vm.swappiness" in refused.text


def test_docker_py_passes_the_options(service: Service) -> None:
    client = docker_py.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    try:
        output = client.containers.run(
            IMAGE,
            ["sh", "-c", "cat /proc/sys/net/core/somaxconn; grep Groups /proc/self/status"],
            sysctls={"net.core.somaxconn": "1234"},
            group_add=["77"],
            cpu_shares=256,
            mem_limit="64m",
            memswap_limit="96m",
            stop_signal="SIGINT",
            remove=True,
        )
        assert output.decode().split() == ["1234", "Groups:", "77"]
        bad = pytest.raises(
            docker_py.errors.APIError,
            client.containers.run,
            IMAGE,
            "true",
            log_config={"type": "journald"},
        )
        assert "no log driver named 'journald'" in str(bad.value)
    finally:
        client.close()
