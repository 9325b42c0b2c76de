"""A mydocker service process of the benchmark's own, and /proc figures about it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runtime import cgroups, libc
from runtime.layout import Layout
from runtime.security import devices

ROOT = Path(__file__).resolve().parents[1]
#: uvicorn's access log costs CPU on every request: the benchmark's services go without.
QUIET = ["--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """``python -m app`` on a free loopback port with its own state dir: the
    benchmark's services and the end-to-end tests' (tests/e2e/conftest.py)."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    #: The source tree it runs from (bench.abload: another checkout's).
    tree: Path = ROOT
    #: The module ``python -m`` runs (bench.httptimeline: ``bench.marks``, the
    #: service with hooks).
    module: str = "app"
    #: A network namespace to run in (``/proc/PID/ns/net``, entered with
    #: nsenter(1)): its loopback is then the service's, reachable only from
    #: inside (``client_argv``).
    netns: str | None = None

    def client_argv(self, argv: list[str]) -> list[str]:
        """``argv`` as a client of this service runs it: in its namespace."""
        return ["nsenter", f"--net={self.netns}", *argv] if self.netns else argv

    def _healthy(self) -> bool:
        if self.netns is None:
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        probe = f"import urllib.request; urllib.request.urlopen('{self.url}/health', timeout=1)"
        argv = self.client_argv([sys.executable, "-c", probe])
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until ``/health`` answers."""
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the log fd; ours is closed at once.
        with open(self.state_dir.parent / f"service-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(
                self.client_argv(
                    [
                        sys.executable,
                        "-m",
                        self.module,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                        "--state-dir",
                        str(self.state_dir),
                        *self.extra_args,
                    ]
                ),
                cwd=self.tree,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The host's namespace: `docker run` without --network gets
                # `none` here, so that no test or bench makes a bridge or a
                # firewall table on the host (tests/e2e/netservice.py runs
                # the network tests in a namespace of their own).
                env={**os.environ, "MYDOCKER_DOCKER_NETWORK": "none", **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            if self._healthy():
                return
            time.sleep(0.05)
        raise RuntimeError("the service did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the API process only: the launcher and its containers outlive it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def launcher_pid(self) -> int | None:
        """The launcher serving this state dir (the API's child, or an orphan)."""
        return find_launcher(self.state_dir)

    def stop_launcher(self) -> None:
        """End the launcher this service started."""
        pid = self.launcher_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill_leftovers(self) -> None:
        kill_leftovers(self.state_dir)

    def close(self) -> None:
        """Everything this service started: the API, the launcher, the containers."""
        self.stop()
        self.stop_launcher()
        self.kill_leftovers()


def kill_leftovers(state_dir: Path) -> None:
    """Containers still running outlive their launcher (reparented to
    init); kill them through the state dir's cgroups, as a restarted
    launcher would, so that nothing is left behind (a warm pool's cgroups
    included), and unmount the tmpfs of the /etc files and of the pid
    files, which outlive the service by design (runtime/network/etcdir.py,
    runtime/rundir.py)."""
    layout = Layout.of(str(state_dir))
    for tmpfs in (layout.etc_files, layout.run_dir):
        if os.path.ismount(tmpfs):
            libc.umount2(tmpfs, libc.MNT_DETACH)
    manager = cgroups.manager(str(state_dir))
    if manager is not None:
        manager.cleanup()
        manager.remove_parent()
        manager.remove_empty_parents()
    if devices.available():
        parent = devices.parent_for(str(state_dir))
        devices.sweep(parent)
        devices.remove_parent(parent)


def find_launcher(state_dir: Path) -> int | None:
    """The launcher's pid.  Its children share its command line until they
    execve (a warm pool's children for their whole wait, runtime/pooled.py):
    the launcher is the match whose parent is not a match."""
    needle = f"runtime.launcher\0--state-dir\0{state_dir}\0".encode()
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                # proc(5): the parent's pid is the 2nd field after the ")" of comm.
                found[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    roots = [pid for pid, parent in found.items() if parent not in found]
    return min(roots) if roots else None


def proc_status(pid: int | None) -> dict[str, int] | None:
    """RSS (KiB) and thread count of a process, from /proc/PID/status (proc(5))."""
    if pid is None:
        return None
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "VmRSS":
                    values["rss_kib"] = int(rest.split()[0])
                elif key == "Threads":
                    values["threads"] = int(rest)
        values["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return values


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (zombies included: they are not reaped yet)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def zygote_of(launcher: int | None) -> int | None:
    """The launcher's zygote (runtime/launcher/zygote.py), which clones the
    warm pool's children: its CPU is the launcher's work done elsewhere."""
    for pid in children_of(launcher) if launcher is not None else ():
        if is_zygote(pid):
            return pid
    return None


def is_zygote(pid: int) -> bool:
    """The zygote's command line, in the launcher's pid namespace: the pooled
    children it clones (``CLONE_PARENT``: the launcher's children too) share
    its command line, each in a pid namespace of its own."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"runtime.launcher.zygote" not in f.read():
                return False
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def cpu_seconds(pid: int | None) -> dict[str, float] | None:
    """CPU used so far: the process's own (all threads, from schedstat, in ns
    precision) and its reaped children's (utime+stime in clock ticks).

    proc(5): /proc/PID/task/TID/schedstat's first field is the time spent on
    a CPU; /proc/PID/stat fields 16 and 17 are cutime and cstime."""
    if pid is None:
        return None
    try:
        own = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                own += int(f.read().split()[0])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return {"self": own / 1e9, "children": (int(fields[13]) + int(fields[14])) / ticks}
