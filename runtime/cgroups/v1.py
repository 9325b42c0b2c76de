"""The cgroup v1 driver: one directory per controller hierarchy.

Controllers used (each mounted under ``<root>/<name>``, possibly co-mounted
as ``cpu,cpuacct`` with symlinks; cgroups(7)):

    memory    memory.limit_in_bytes, memory.memsw.limit_in_bytes (when swap is
              accounted), memory.usage_in_bytes, memory.max_usage_in_bytes,
              memory.oom_control's ``oom_kill`` counter (Linux 4.13)
    pids      pids.max, pids.current
    cpu       cpu.cfs_period_us, cpu.cfs_quota_us (sched-design-CFS, "CFS bandwidth")
    cpuacct   cpuacct.usage (user + system, in ns)
    freezer   no limit: its own cgroup per container, so pause freezes the
              container alone (runtime/freezer.py)

In each hierarchy the parent sits under the cgroup this process is in
(``/proc/self/cgroup``), so containers stay inside whatever bounds the
service itself was given.
"""

from __future__ import annotations

import os

from runtime.cgroups.base import Cgroup, CgroupError, Kill, Manager, Stats
from runtime.cgroups.fs import CgroupFs
from runtime.spec import Limits

CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
CFS_PERIOD_US = 100_000


class V1Cgroup(Cgroup):
    def __init__(self, name: str, dirs: dict[str, str], fs: CgroupFs, kill: Kill) -> None:
        super().__init__(name, fs, kill)
        self.dirs = dirs  # controller -> this cgroup's directory in that hierarchy
        self._paths: list[str] | None = None

    @property
    def paths(self) -> list[str]:
        # Co-mounted controllers (cpu,cpuacct) share one directory.  Worked
        # out once: realpath walks every component with lstat, and this is
        # read several times per launch (9% of the launcher's CPU).
        if self._paths is None:
            unique: dict[str, str] = {}
            for path in self.dirs.values():
                unique.setdefault(os.path.realpath(path), path)
            self._paths = list(unique.values())
        return list(self._paths)

    def _file(self, controller: str, name: str) -> str | None:
        directory = self.dirs.get(controller)
        return None if directory is None else os.path.join(directory, name)

    def stats(self, live: bool = True) -> Stats:
        def read(controller: str, name: str) -> int | None:
            path = self._file(controller, name)
            return None if path is None else self._read_int(path)

        oom_control = self._file("memory", "memory.oom_control")
        usage_ns = read("cpuacct", "cpuacct.usage")
        pids = None
        if live:
            pids = read("pids", "pids.current")
            pids = pids if pids is not None else len(self.procs())
        return Stats(
            memory_bytes=read("memory", "memory.usage_in_bytes") if live else None,
            memory_peak_bytes=read("memory", "memory.max_usage_in_bytes"),
            cpu_seconds=None if usage_ns is None else usage_ns / 1e9,
            pids=pids,
            oom_kills=None if oom_control is None else self._read_keyed(oom_control, "oom_kill"),
        )


class V1Manager(Manager):
    version = "v1"

    def __init__(
        self,
        root: str,
        parent: str,
        own: dict[str, str],
        fs: CgroupFs | None = None,
        kill: Kill = os.kill,
    ) -> None:
        """``own``: controller -> this process's cgroup path in that hierarchy."""
        super().__init__(fs or CgroupFs(), kill)
        self.parents: dict[str, str] = {}
        for controller in CONTROLLERS:
            mount = os.path.join(root, controller)
            if self.fs.exists(mount):
                base = os.path.join(mount, own.get(controller, "/").lstrip("/"))
                self.parents[controller] = os.path.normpath(os.path.join(base, parent))

    def _dirs(self, name: str) -> dict[str, str]:
        return {c: os.path.join(p, name) for c, p in self.parents.items()}

    def create(self, name: str, limits: Limits) -> V1Cgroup:
        needed = {"memory": limits.memory_bytes, "pids": limits.pids, "cpu": limits.cpus}
        for controller, value in needed.items():
            if value is not None and controller not in self.parents:
                raise CgroupError(f"the {controller} controller is not mounted")
        cgroup = V1Cgroup(name, self._dirs(name), self.fs, self.kill)
        try:
            for path in cgroup.paths:
                self.fs.mkdir(path)
            self._apply(cgroup, limits)
        except OSError as err:
            cgroup.remove()
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err
        return cgroup

    def _apply(self, cgroup: V1Cgroup, limits: Limits) -> None:
        def write(controller: str, name: str, value: int) -> None:
            path = cgroup._file(controller, name)
            assert path is not None
            try:
                self.fs.write(path, str(value))
            except OSError as err:
                raise OSError(err.errno, err.strerror, path) from err

        if limits.memory_bytes is not None:
            write("memory", "memory.limit_in_bytes", limits.memory_bytes)
            # memsw is memory+swap: the same value means no swap at all, so the
            # limit cannot be dodged by swapping out (absent without swapaccount).
            memsw = cgroup._file("memory", "memory.memsw.limit_in_bytes")
            if memsw is not None and self.fs.exists(memsw):
                write("memory", "memory.memsw.limit_in_bytes", limits.memory_bytes)
        if limits.pids is not None:
            write("pids", "pids.max", limits.pids)
        if limits.cpus is not None:
            write("cpu", "cpu.cfs_period_us", CFS_PERIOD_US)
            write("cpu", "cpu.cfs_quota_us", max(1000, round(limits.cpus * CFS_PERIOD_US)))

    def open(self, name: str) -> V1Cgroup:
        return V1Cgroup(name, self._dirs(name), self.fs, self.kill)

    def leftovers(self) -> list[str]:
        names: set[str] = set()
        for parent in self.parents.values():
            names.update(self.fs.subdirs(parent))
        return sorted(names)

    def parent_dirs(self) -> list[str]:
        unique: dict[str, str] = {}
        for path in self.parents.values():
            unique.setdefault(os.path.realpath(path), path)
        return list(unique.values())

    def remove_parent(self) -> None:
        seen = set()
        for parent in self.parents.values():
            real = os.path.realpath(parent)
            if real in seen:
                continue
            seen.add(real)
            try:
                self.fs.rmdir(parent)
            except OSError:
                pass  # absent, or still has children: leave it
