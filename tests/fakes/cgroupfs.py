"""A fake cgroupfs in a tmp dir that plays the kernel's part.

``mkdir`` populates the control files a real kernel would show, writes to
``cgroup.procs`` / ``cgroup.kill`` / ``cgroup.subtree_control`` act like the
kernel's, ``rmdir`` refuses (EBUSY) while processes or children remain, and
``kill`` removes a pid from every cgroup (not from a frozen v1 freezer's).  Every write is recorded.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from typing import Any

import pytest

from runtime.cgroups.fs import CgroupFs

V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.memsw.limit_in_bytes": "9223372036854771712\n",
        "memory.usage_in_bytes": "0\n",
        "memory.max_usage_in_bytes": "0\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "memory.soft_limit_in_bytes": "9223372036854771712\n",
        "memory.swappiness": "60\n",
    },
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "cpu": {"cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n", "cpu.shares": "1024\n"},
    "cpuacct": {"cpuacct.usage": "0\n"},
    # cpuset(7): a new cpuset starts with both lists empty.
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n"},
    "freezer": {"freezer.state": "THAWED\n"},
}
V2_FILES = {
    "cgroup.subtree_control": "\n",
    "cgroup.kill": "",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.current": "0\n",
    "memory.peak": "0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "pids.max": "max\n",
    "pids.current": "0\n",
    "cpu.max": "max 100000\n",
    "cpu.weight": "100\n",
    "memory.low": "0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}


class FakeCgroupFs(CgroupFs):
    def __init__(self, root: str, version: str) -> None:
        self.root = root
        self.version = version
        self.writes: list[tuple[str, str]] = []
        self.killed: list[tuple[int, int]] = []
        self.busy: set[str] = set()  # subtree_control writes that fail with EBUSY

    # -- building the tree ----------------------------------------------
    def make_root(
        self, controllers: tuple[str, ...] = ("memory", "pids", "cpu", "cpuacct")
    ) -> None:
        if self.version == "v2":
            os.makedirs(self.root, exist_ok=True)
            self.put(self.root, "cgroup.controllers", "cpuset cpu io memory pids\n")
            self.put(self.root, "cgroup.subtree_control", "\n")
            self.put(self.root, "cgroup.procs", "1\n")
        else:
            for controller in controllers:
                os.makedirs(os.path.join(self.root, controller), exist_ok=True)
                self.put(os.path.join(self.root, controller), "cgroup.procs", "1\n")

    def put(self, directory: str, name: str, text: str) -> None:
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)

    def get(self, path: str) -> str:
        with open(path) as f:
            return f.read()

    # -- the kernel's part ----------------------------------------------
    def mkdir(self, path: str) -> None:
        if os.path.isdir(path):
            return
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            self.mkdir(parent)
        os.mkdir(path)
        self.put(path, "cgroup.procs", "")
        if self.version == "v2":
            enabled = self.get(os.path.join(parent, "cgroup.subtree_control")).split()
            self.put(path, "cgroup.controllers", " ".join(enabled) + "\n")
            for name, text in V2_FILES.items():
                controller = name.split(".")[0]
                if controller == "cgroup" or controller in enabled:
                    self.put(path, name, text)
        else:
            controller = os.path.relpath(path, self.root).split(os.sep)[0]
            for name, text in V1_FILES[controller].items():
                self.put(path, name, text)

    def write(self, path: str, text: str) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.writes.append((os.path.relpath(path, self.root), text))
        name = os.path.basename(path)
        directory = os.path.dirname(path)
        if name == "cgroup.procs":
            # A process is in one cgroup per hierarchy: it leaves its old one.
            for procs in self._all_procs(self._hierarchy(path)):
                pids = self.get(procs).split()
                if text in pids:
                    pids.remove(text)
                    self.put(
                        os.path.dirname(procs), "cgroup.procs", "".join(p + "\n" for p in pids)
                    )
            self.put(directory, name, self.get(path) + text + "\n")
        elif name == "cgroup.kill":
            for pid in self.get(os.path.join(directory, "cgroup.procs")).split():
                self.kill(int(pid), signal.SIGKILL)
        elif name == "cgroup.subtree_control":
            if directory in self.busy:
                raise OSError(errno.EBUSY, "Device or resource busy", path)
            enabled = self.get(path).split()
            for word in text.split():
                if word.startswith("+") and word[1:] not in enabled:
                    enabled.append(word[1:])
            self.put(directory, name, " ".join(enabled) + "\n")
        else:
            self.put(directory, name, text)

    def rmdir(self, path: str) -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        with os.scandir(path) as entries:
            has_children = any(e.is_dir() for e in entries)
        if self.get(os.path.join(path, "cgroup.procs")).strip() or has_children:
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        shutil.rmtree(path)

    def _hierarchy(self, path: str) -> str:
        if self.version == "v2":
            return self.root
        return os.path.join(self.root, os.path.relpath(path, self.root).split(os.sep)[0])

    def _all_procs(self, top: str | None = None) -> list[str]:
        found = []
        for directory, _, files in os.walk(top or self.root):
            if "cgroup.procs" in files:
                found.append(os.path.join(directory, "cgroup.procs"))
        return found

    def kill(self, pid: int, sig: int) -> None:
        """A kill(2) that kills unless the pid is in a FROZEN v1 freezer
        cgroup (cgroup-v1/freezer-subsystem.rst: it dies once thawed, which
        the fake leaves to the next kill): the pid leaves every cgroup."""
        self.killed.append((pid, sig))
        for procs in self._all_procs(os.path.join(self.root, "freezer")):
            state = os.path.join(os.path.dirname(procs), "freezer.state")
            frozen = os.path.isfile(state) and self.get(state).strip() == "FROZEN"
            if frozen and str(pid) in self.get(procs).split():
                return
        for procs in self._all_procs():
            pids = [p for p in self.get(procs).split() if p != str(pid)]
            self.put(os.path.dirname(procs), "cgroup.procs", "".join(p + "\n" for p in pids))


def record_paths(monkeypatch: pytest.MonkeyPatch, fs: CgroupFs, method: str) -> list[str]:
    """The paths ``fs.<method>`` is called with from now on (the calls go through)."""
    paths: list[str] = []
    real = getattr(fs, method)

    def recording(path: str, *args: Any) -> Any:
        paths.append(path)
        return real(path, *args)

    monkeypatch.setattr(fs, method, recording)
    return paths
