"""The cgroup v1 driver: one directory per controller hierarchy.

Controllers used (each mounted under ``<root>/<name>``, possibly co-mounted
as ``cpu,cpuacct`` with symlinks; cgroups(7)):

    memory    memory.limit_in_bytes, memory.memsw.limit_in_bytes (when swap is
              accounted), memory.usage_in_bytes, memory.max_usage_in_bytes,
              memory.oom_control's ``oom_kill`` counter (Linux 4.13)
    pids      pids.max, pids.current
    cpu       cpu.cfs_period_us, cpu.cfs_quota_us (sched-design-CFS, "CFS bandwidth")
    cpuacct   cpuacct.usage (user + system, in ns)
    cpuset    cpuset.cpus, cpuset.mems: only for a container that asks for a
              cpuset (its directory is made then; cpuset(7) wants both files
              filled before a task may join, so they are copied from the parent)
    freezer   no limit: its own cgroup per container, so pause freezes the
              container alone (runtime/freezer.py)

The ``Tuning`` of runtime/options.py adds cpu.shares, the CFS quota and
period, memory.memsw.limit_in_bytes (MemorySwap), memory.soft_limit_in_bytes
(MemoryReservation) and memory.swappiness.

In each hierarchy the parent sits under the cgroup this process is in
(``/proc/self/cgroup``), so containers stay inside whatever bounds the
service itself was given.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from runtime.cgroups.base import Cgroup, CgroupError, Kill, Manager, Stats
from runtime.cgroups.fs import CgroupFs
from runtime.options import NO_TUNING, Tuning
from runtime.spec import Limits

CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
CFS_PERIOD_US = 100_000
#: The counters a reused cgroup starts again from (``reset``).
RESET_COUNTERS = (("cpuacct", "cpuacct.usage"), ("memory", "memory.max_usage_in_bytes"))
#: ``Tuning`` field -> (controller, file).  The period before the quota: the
#: kernel checks a quota against the period it has.  memsw is memory + swap,
#: as Docker's MemorySwap (-1: no limit), written after the memory limit.
TUNING_FILES = (
    ("cpu_shares", "cpu", "cpu.shares"),
    ("cpu_period_us", "cpu", "cpu.cfs_period_us"),
    ("cpu_quota_us", "cpu", "cpu.cfs_quota_us"),
    ("memory_swap_bytes", "memory", "memory.memsw.limit_in_bytes"),
    ("memory_reservation_bytes", "memory", "memory.soft_limit_in_bytes"),
    ("memory_swappiness", "memory", "memory.swappiness"),
    ("cpuset_cpus", "cpuset", "cpuset.cpus"),
    ("cpuset_mems", "cpuset", "cpuset.mems"),
)


class V1Cgroup(Cgroup):
    def __init__(
        self,
        name: str,
        dirs: dict[str, str],
        fs: CgroupFs,
        kill: Kill,
        distinct: tuple[str, ...] | None = None,
    ) -> None:
        """``distinct``: the manager's controllers with a hierarchy of their
        own (``V1Manager.distinct``); None: worked out from ``dirs``."""
        super().__init__(name, fs, kill)
        self.dirs = dirs  # controller -> this cgroup's directory in that hierarchy
        self._paths: list[str] | None = None
        if distinct is not None:
            self._paths = [dirs[c] for c in distinct if c in dirs]

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

    def thaw(self) -> None:
        """cgroup-v1/freezer-subsystem.rst: frozen tasks stay in the
        refrigerator, deaf to SIGKILL, until ``THAWED`` is written (a
        container paused when its launcher died would stay forever)."""
        state = self._file("freezer", "freezer.state")
        if state is None:
            return
        try:
            self.fs.write(state, "THAWED")
        except FileNotFoundError:
            pass  # removed meanwhile

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
        cpuset = os.path.join(root, "cpuset")
        self.cpuset_parent: str | None = None
        if self.fs.exists(cpuset):
            base = os.path.join(cpuset, own.get("cpuset", "/").lstrip("/"))
            self.cpuset_parent = os.path.normpath(os.path.join(base, parent))
        #: The controllers with a hierarchy of their own, in ``_dirs``'s
        #: order: the first of co-mounted ones (cpu,cpuacct) stands for all.
        #: A property of the mounts, so worked out here once rather than
        #: with realpath (an lstat per component) for every container.
        parents = {**self.parents}
        if self.cpuset_parent is not None:
            parents["cpuset"] = self.cpuset_parent
        seen: dict[str, str] = {}
        for controller, path in parents.items():
            seen.setdefault(os.path.realpath(path), controller)
        self.distinct = tuple(seen.values())

    def _dirs(self, name: str, cpuset: bool | None = None) -> dict[str, str]:
        """The cgroup's directories; its cpuset one when ``cpuset`` (a new
        cgroup that asks for one), never when False (a new one that does
        not: no stat(2) per create), if it exists when None (``open``)."""
        dirs = {c: os.path.join(p, name) for c, p in self.parents.items()}
        if self.cpuset_parent is not None:
            path = os.path.join(self.cpuset_parent, name)
            if cpuset or (cpuset is None and self.fs.exists(path)):
                dirs["cpuset"] = path
        return dirs

    def create(self, name: str, limits: Limits, tuning: Tuning = NO_TUNING) -> V1Cgroup:
        cpuset = tuning.cpuset_cpus is not None or tuning.cpuset_mems is not None
        needed = {
            "memory": limits.memory_bytes or tuning.memory_reservation_bytes,
            "pids": limits.pids,
            "cpu": limits.cpus or tuning.cpu_shares or tuning.cpu_quota_us,
        }
        for controller, value in needed.items():
            if value is not None and controller not in self.parents:
                raise CgroupError(f"the {controller} controller is not mounted")
        if cpuset and self.cpuset_parent is None:
            raise CgroupError("the cpuset controller is not mounted")
        cgroup = V1Cgroup(name, self._dirs(name, cpuset), self.fs, self.kill, self.distinct)
        try:
            if cpuset:
                self._cpuset_parent()
            for path in cgroup.paths:
                self.fs.mkdir(path)
            self._apply(cgroup, limits)
            self._tune(cgroup, tuning)
        except OSError as err:
            cgroup.remove()
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err
        return cgroup

    def _writer(self, cgroup: V1Cgroup) -> Callable[[str, str, int | str], None]:
        """Writes one control file of ``cgroup``; an error names the file."""

        def write(controller: str, name: str, value: int | str) -> None:
            path = cgroup._file(controller, name)
            assert path is not None
            try:
                self.fs.write(path, str(value))
            except OSError as err:
                raise OSError(err.errno, err.strerror, path) from err

        return write

    def _apply(self, cgroup: V1Cgroup, limits: Limits) -> None:
        write = self._writer(cgroup)
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

    def reset(self, cgroup: Cgroup) -> None:
        """Set a warm child's counters back to zero once it is parked.

        cgroup-v1/cpuacct.rst: writing 0 to ``cpuacct.usage`` resets it;
        cgroup-v1/memory.rst: writing to ``memory.max_usage_in_bytes``
        resets the peak to the current usage.  Done when the child says
        READY, not at its claim (two writes, ~0.13 ms, off the launch's
        path): parked, it sleeps in recv(2) until its claim, so it adds no
        CPU time and no peak (its usage can only shrink meanwhile).
        ``memory.usage_in_bytes`` is its own pages, which its execve gives
        back.  No exists() first: a missing counter is a write's ENOENT."""
        assert isinstance(cgroup, V1Cgroup)
        try:
            for controller, counter in RESET_COUNTERS:
                counter_path = cgroup._file(controller, counter)
                if counter_path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.write(counter_path, "0")
        except OSError as err:
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err

    def adopt(self, cgroup: Cgroup, limits: Limits) -> None:
        """Write ``limits`` into a warm child's cgroup, made with none
        (``Limits()``): only what the container asks for is written."""
        assert isinstance(cgroup, V1Cgroup)
        try:
            self._apply(cgroup, limits)
        except OSError as err:
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err

    def rename(self, cgroup: Cgroup, name: str) -> V1Cgroup:
        """Rename the cgroup in each hierarchy (co-mounted ones: one
        directory, one rename); its processes and limits stay (rename(2)
        of a kernfs directory).  On a failure (a leftover of that name:
        EEXIST) the ones already renamed go back, and CgroupError."""
        assert isinstance(cgroup, V1Cgroup)
        # The same hierarchies as before (no stat(2) for a cpuset one).
        dirs = {c: os.path.join(os.path.dirname(d), name) for c, d in cgroup.dirs.items()}
        renamed = V1Cgroup(name, dirs, self.fs, self.kill, self.distinct)
        done: list[str] = []
        try:
            for controller in self.distinct:
                if controller in cgroup.dirs:
                    self.fs.rename(cgroup.dirs[controller], renamed.dirs[controller])
                    done.append(controller)
        except OSError as err:
            for controller in done:
                with contextlib.suppress(OSError):
                    self.fs.rename(renamed.dirs[controller], cgroup.dirs[controller])
            raise CgroupError(f"{err.filename or 'cgroup'}: {err.strerror}") from err
        return renamed

    def _cpuset_parent(self) -> None:
        """Our cpuset parent, its cpus and mems filled from its own parent's
        (cpuset(7): a new cpuset starts empty, and a task cannot join one)."""
        assert self.cpuset_parent is not None
        if not self.fs.exists(self.cpuset_parent):
            self.fs.mkdir(self.cpuset_parent)
        self._inherit(self.cpuset_parent)

    def _inherit(self, path: str) -> None:
        above = os.path.dirname(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not self.fs.read(os.path.join(path, name)).strip():
                self.fs.write(os.path.join(path, name), self.fs.read(os.path.join(above, name)))

    def _tune(self, cgroup: V1Cgroup, tuning: Tuning) -> None:
        write = self._writer(cgroup)
        for field, controller, name in TUNING_FILES:
            value = getattr(tuning, field)
            if value is not None and controller in cgroup.dirs:
                write(controller, name, value)
        if "cpuset" in cgroup.dirs:
            self._inherit(cgroup.dirs["cpuset"])

    def open(self, name: str) -> V1Cgroup:
        return V1Cgroup(name, self._dirs(name), self.fs, self.kill, self.distinct)

    def leftovers(self) -> list[str]:
        names: set[str] = set()
        for parent in self._all_parents():
            names.update(self.fs.subdirs(parent))
        return sorted(names)

    def parent_dirs(self) -> list[str]:
        unique: dict[str, str] = {}
        for path in self._all_parents():
            unique.setdefault(os.path.realpath(path), path)
        return list(unique.values())

    def _all_parents(self) -> list[str]:
        """The parents, with the cpuset one once a container has made it."""
        extra = [self.cpuset_parent] if self.cpuset_parent else []
        return list(self.parents.values()) + [p for p in extra if self.fs.exists(p)]

    def remove_parent(self) -> None:
        seen = set()
        for parent in self._all_parents():
            real = os.path.realpath(parent)
            if real in seen:
                continue
            seen.add(real)
            try:
                self.fs.rmdir(parent)
            except OSError:
                pass  # absent, or still has children: leave it
