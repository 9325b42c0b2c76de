"""The cgroup v2 driver: one unified hierarchy (cgroups(7), the kernel's cgroup-v2.rst).

    memory   memory.max, memory.swap.max (0: no swap), memory.current,
             memory.peak (Linux 5.19), memory.events ``oom_kill``
    pids     pids.max, pids.current
    cpu      cpu.max ("quota period"), cpu.stat ``usage_usec``
    kill     cgroup.kill (Linux 5.14) kills every process at once

The ``Tuning`` of runtime/options.py: cpu.weight (from Docker's shares, as
runc converts them), cpu.max with its own period, cpuset.cpus/mems (when the
cpuset controller is enabled), memory.swap.max (swap alone: MemorySwap less
the memory), memory.low (MemoryReservation); swappiness is v1 only.

v2 allows processes only in leaf cgroups once controllers are enabled below
("no internal processes"), except in the root.  The parent is put under
this process's own cgroup when that cgroup already delegates the
controllers (systemd's ``Delegate=yes``) or is the root; otherwise under the
hierarchy's root, which is exempt.
"""

from __future__ import annotations

import os

from runtime.cgroups.base import KILL_ROUNDS, Cgroup, CgroupError, Kill, Manager, Stats
from runtime.cgroups.fs import CgroupFs
from runtime.options import NO_TUNING, UNLIMITED, Tuning
from runtime.spec import Limits

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


class V2Cgroup(Cgroup):
    def __init__(self, name: str, path: str, fs: CgroupFs, kill: Kill) -> None:
        super().__init__(name, fs, kill)
        self.path = path

    @property
    def paths(self) -> list[str]:
        return [self.path]

    def stats(self, live: bool = True) -> Stats:
        def file(name: str) -> str:
            return os.path.join(self.path, name)

        usage_usec = self._read_keyed(file("cpu.stat"), "usage_usec")
        pids = None
        if live:
            pids = self._read_int(file("pids.current"))
            pids = pids if pids is not None else len(self.procs())
        return Stats(
            memory_bytes=self._read_int(file("memory.current")) if live else None,
            memory_peak_bytes=self._read_int(file("memory.peak")),
            cpu_seconds=None if usage_usec is None else usage_usec / 1e6,
            pids=pids,
            oom_kills=self._read_keyed(file("memory.events"), "oom_kill"),
        )

    def kill_all(self, rounds: int = KILL_ROUNDS) -> bool:
        kill_file = os.path.join(self.path, "cgroup.kill")
        if self.fs.exists(kill_file):
            try:
                self.fs.write(kill_file, "1")
            except FileNotFoundError:
                return True  # already removed
        # Older kernels, and the processes cgroup.kill caught mid-fork: the loop.
        return super().kill_all(rounds)


class V2Manager(Manager):
    version = "v2"

    def __init__(
        self,
        root: str,
        parent: str,
        own: str,
        fs: CgroupFs | None = None,
        kill: Kill = os.kill,
    ) -> None:
        """``own``: this process's cgroup path (the ``0::`` line of /proc/self/cgroup)."""
        super().__init__(fs or CgroupFs(), kill)
        self.root = root
        self.parent_name = parent
        self.own = os.path.normpath(os.path.join(root, own.lstrip("/")))
        self._parent: str | None = None

    def _controllers(self, path: str, name: str) -> set[str]:
        try:
            return set(self.fs.read(os.path.join(path, name)).split())
        except FileNotFoundError:
            return set()

    def _delegates(self, path: str) -> bool:
        if os.path.normpath(path) == os.path.normpath(self.root):
            return True
        # Delegated when every controller the root offers is enabled below `path`.
        wanted = set(CONTROLLERS) & self._controllers(self.root, "cgroup.controllers")
        return wanted <= self._controllers(path, "cgroup.subtree_control")

    def _enable(self, path: str) -> None:
        available = self._controllers(path, "cgroup.controllers")
        enabled = self._controllers(path, "cgroup.subtree_control")
        missing = [c for c in CONTROLLERS if c in available and c not in enabled]
        if missing:
            self.fs.write(
                os.path.join(path, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing)
            )

    @property
    def parent(self) -> str:
        """The parent's path (decided once: see the module docstring)."""
        if self._parent is None:
            base = self.own if self._delegates(self.own) else self.root
            self._parent = os.path.join(base, self.parent_name)
        return self._parent

    def _ensure_parent(self) -> str:
        parent = self.parent
        base = os.path.dirname(parent)
        try:
            self._enable(base)
            self.fs.mkdir(parent)
            self._enable(parent)
        except OSError as err:
            raise CgroupError(
                f"cannot delegate controllers under {base}: {err.strerror or err}"
            ) from err
        return parent

    def create(self, name: str, limits: Limits, tuning: Tuning = NO_TUNING) -> V2Cgroup:
        parent = self._ensure_parent()
        available = self._controllers(parent, "cgroup.subtree_control")
        if tuning.memory_swappiness is not None:
            raise CgroupError("memory_swappiness: cgroup v2 has no per-cgroup swappiness")
        needed = {
            "memory": limits.memory_bytes or tuning.memory_reservation_bytes,
            "pids": limits.pids,
            "cpu": limits.cpus or tuning.cpu_shares or tuning.cpu_quota_us,
            "cpuset": tuning.cpuset_cpus or tuning.cpuset_mems,
        }
        for controller, value in needed.items():
            if value is not None and controller not in available:
                raise CgroupError(f"the {controller} controller is not enabled in {parent}")
        cgroup = V2Cgroup(name, os.path.join(parent, name), self.fs, self.kill)
        try:
            self.fs.mkdir(cgroup.path)
            self._apply(cgroup, limits)
            self._tune(cgroup, limits, tuning)
        except OSError as err:
            cgroup.remove()
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err
        return cgroup

    def _apply(self, cgroup: V2Cgroup, limits: Limits) -> None:
        def write(name: str, value: str) -> None:
            path = os.path.join(cgroup.path, name)
            try:
                self.fs.write(path, value)
            except OSError as err:
                raise OSError(err.errno, err.strerror, path) from err

        if limits.memory_bytes is not None:
            write("memory.max", str(limits.memory_bytes))
            # No swap, so the limit is the limit (absent without swap accounting).
            if self.fs.exists(os.path.join(cgroup.path, "memory.swap.max")):
                write("memory.swap.max", "0")
        if limits.pids is not None:
            write("pids.max", str(limits.pids))
        if limits.cpus is not None:
            quota = max(1000, round(limits.cpus * CPU_PERIOD_US))
            write("cpu.max", f"{quota} {CPU_PERIOD_US}")

    def _tune(self, cgroup: V2Cgroup, limits: Limits, tuning: Tuning) -> None:
        values: dict[str, str | None] = {
            "cpuset.cpus": tuning.cpuset_cpus,
            "cpuset.mems": tuning.cpuset_mems,
            "memory.low": _text(tuning.memory_reservation_bytes),
        }
        if tuning.cpu_shares is not None:
            # runc's ConvertCPUSharesToCgroupV2Value: 2..262144 onto 1..10000.
            values["cpu.weight"] = str(1 + ((tuning.cpu_shares - 2) * 9999) // 262142)
        if tuning.cpu_quota_us is not None or tuning.cpu_period_us is not None:
            quota = "max" if tuning.cpu_quota_us is None else str(tuning.cpu_quota_us)
            values["cpu.max"] = f"{quota} {tuning.cpu_period_us or CPU_PERIOD_US}"
        swap = tuning.memory_swap_bytes
        if swap is not None:
            memory = limits.memory_bytes or 0
            values["memory.swap.max"] = "max" if swap == UNLIMITED else str(swap - memory)
        for name, value in values.items():
            if value is None:
                continue
            path = os.path.join(cgroup.path, name)
            try:
                self.fs.write(path, value)
            except OSError as err:
                raise OSError(err.errno, err.strerror, path) from err

    def open(self, name: str) -> V2Cgroup:
        return V2Cgroup(name, os.path.join(self.parent, name), self.fs, self.kill)

    def leftovers(self) -> list[str]:
        return self.fs.subdirs(self.parent)

    def parent_dirs(self) -> list[str]:
        return [self.parent]

    def remove_parent(self) -> None:
        try:
            self.fs.rmdir(self.parent)
        except OSError:
            pass  # absent, or still has children: leave it


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
