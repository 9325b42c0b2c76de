"""What both drivers offer: one container's cgroup, and the service's parent.

``Cgroup``   one container: add(pid), stats(), procs(), thaw(), kill_all(), remove()
``Manager``  the service instance's parent cgroup: create(), open(),
             reset() (a warm child's counters), adopt() (its limits), rename(),
             leftovers(),
             cleanup(), remove_parent(), remove_empty_parents()
``Stats``    counters read from a cgroup (``None``: the kernel lacks the file)
pool_name(), orphaned_pool()   a warm child's cgroup name; one of a dead launcher
"""

from __future__ import annotations

import abc
import errno
import os
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from runtime.cgroups.fs import CgroupFs
from runtime.options import NO_TUNING, Tuning
from runtime.spec import Limits

Kill = Callable[[int, int], None]

PARENT_PREFIX = "mydocker-"
#: A warm child's cgroup (runtime/launcher/pool.py): ``pool-<launcher pid>-<n>``.
POOL_PREFIX = "pool-"


def pool_name(launcher_pid: int, number: int) -> str:
    return f"{POOL_PREFIX}{launcher_pid}-{number}"


def orphaned_pool(name: str, alive: Callable[[int], bool] | None = None) -> bool:
    """Is ``name`` a warm child's cgroup whose launcher is gone?

    A launcher killed with SIGKILL leaves its pool's cgroups behind, empty
    once its children read EOF and exit; when its state dir is gone too
    (tests, a removed service), no launcher of that state dir ever starts
    to clean them, and their parent cannot be removed.  Another service's
    launcher may remove them: an empty cgroup of a dead launcher serves no
    one (rmdir(2) still refuses one with processes)."""
    parts = name.split("-")
    if len(parts) != 3 or not name.startswith(POOL_PREFIX):
        return False
    if not (parts[1].isdigit() and parts[2].isdigit()):
        return False
    return not (alive or _alive)(int(parts[1]))


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


#: By default kill_all makes up to 200 passes 5 ms apart (1 s) before it
#: reports the cgroup as still busy; the caller retries removal later.
KILL_ROUNDS = 200
KILL_ROUND_SLEEP = 0.005


class CgroupError(Exception):
    """A cgroup could not be set up; the message says which file and why."""


@dataclass(frozen=True)
class Stats:
    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    cpu_seconds: float | None = None
    pids: int | None = None
    oom_kills: int | None = None


class Cgroup(abc.ABC):
    """One container's cgroup (one directory per hierarchy on v1)."""

    def __init__(self, name: str, fs: CgroupFs, kill: Kill) -> None:
        self.name = name
        self.fs = fs
        self._kill = kill

    @property
    @abc.abstractmethod
    def paths(self) -> list[str]:
        """The cgroup's directories (one on v2, one per mounted hierarchy on v1)."""

    @property
    def procs_files(self) -> list[str]:
        """Where to write a pid to move that process into this cgroup.

        For a process started later in the container (exec): write its pid
        to each, or call ``add(pid)`` from the launcher, before it runs the
        user's command."""
        return [os.path.join(p, "cgroup.procs") for p in self.paths]

    def add(self, pid: int) -> None:
        """Move ``pid`` (the whole thread group) into this cgroup."""
        for path in self.procs_files:
            try:
                self.fs.write(path, str(pid))
            except OSError as err:
                raise CgroupError(f"{path}: {os.strerror(err.errno or errno.EIO)}") from err

    def procs(self) -> list[int]:
        """The pids in the cgroup (exited processes are not listed)."""
        try:
            text = self.fs.read(self.procs_files[0])
        except FileNotFoundError:
            return []
        return [int(line) for line in text.split()]

    @abc.abstractmethod
    def stats(self, live: bool = True) -> Stats:
        """The counters; ``live=False`` (at exit) skips ``memory_bytes`` and
        ``pids``, which say nothing once the container is gone (two reads
        fewer per exit)."""
        ...

    def kill_all(self, rounds: int = KILL_ROUNDS) -> bool:
        """SIGKILL every process in the cgroup until it is empty.

        Reading ``cgroup.procs`` and killing races with fork, so repeat until
        nothing is left; a signal-ignoring child cannot ignore SIGKILL
        (signal(7)).  A frozen cgroup is thawed first (``thaw``): a v1
        frozen task does not die of SIGKILL until thawed.  Returns whether
        the cgroup is empty after at most ``rounds`` passes (the launcher's
        loop does one pass per turn, so a process stuck in the kernel cannot
        stall it)."""
        for round_ in range(rounds):
            pids = self.procs()
            if not pids:
                return True
            if round_ == 0:
                self.thaw()
            for pid in pids:
                try:
                    self._kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if round_ + 1 < rounds:
                time.sleep(KILL_ROUND_SLEEP)
        return not self.procs()

    def thaw(self) -> None:
        """Let frozen processes run (and die) again.  Nothing to do on v2:
        a fatal signal reaches a task of a frozen v2 cgroup (cgroup-v2.rst,
        "Core Interface Files", cgroup.freeze)."""
        return None

    def remove(self) -> bool:
        """rmdir the cgroup; ``False`` while processes are still in it (EBUSY)."""
        done = True
        for path in self.paths:
            try:
                self.fs.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                if err.errno != errno.EBUSY:
                    raise
                done = False
        return done

    def _read_int(self, path: str) -> int | None:
        try:
            return int(self.fs.read(path).split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _read_keyed(self, path: str, key: str) -> int | None:
        """A value from a flat keyed file (``key value`` per line)."""
        try:
            text = self.fs.read(path)
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
        return None


class Manager(abc.ABC):
    """The parent cgroup of one service instance and the containers' under it."""

    version: str

    def __init__(self, fs: CgroupFs, kill: Kill) -> None:
        self.fs = fs
        self.kill = kill

    @abc.abstractmethod
    def create(self, name: str, limits: Limits, tuning: Tuning = NO_TUNING) -> Cgroup:
        """Create the cgroup ``name`` with ``limits`` (memory, pids, cpus) and
        ``tuning`` (shares, quota, cpuset, swap, ...: runtime/options.py)."""

    def reset(self, cgroup: Cgroup) -> None:
        """A warm child's counters set back to what a new cgroup shows, once
        it is ready and parked (runtime/launcher/pool.py).  A driver that
        cannot reset them refuses (CgroupError), and the pool stays off."""
        raise CgroupError(f"the cgroup {self.version} driver cannot reuse a cgroup")

    def adopt(self, cgroup: Cgroup, limits: Limits) -> None:
        """A warm child's cgroup made a container's: ``limits`` written."""
        raise CgroupError(f"the cgroup {self.version} driver cannot reuse a cgroup")

    def rename(self, cgroup: Cgroup, name: str) -> Cgroup:
        """An adopted cgroup renamed to its container's id (the name is for
        people and tools: the launcher keeps the object).  A driver that
        cannot adopt cannot rename."""
        raise CgroupError(f"the cgroup {self.version} driver cannot reuse a cgroup")

    @abc.abstractmethod
    def open(self, name: str) -> Cgroup:
        """The cgroup ``name`` as it is (for stats, kill and removal)."""

    @abc.abstractmethod
    def leftovers(self) -> list[str]:
        """Names of the container cgroups under the parent."""

    @abc.abstractmethod
    def remove_parent(self) -> None:
        """rmdir the parent when it is empty (when its last container is gone)."""

    @abc.abstractmethod
    def parent_dirs(self) -> list[str]:
        """The parent's directories (one per hierarchy on v1)."""

    def remove_empty_parents(self) -> list[str]:
        """rmdir the empty ``mydocker-*`` parents next to ours.

        A launcher killed with SIGKILL leaves its parent behind (and test
        runs make many); an empty parent holds nothing, and the kernel
        refuses to remove one that still has container cgroups (EBUSY).
        Returns the directories removed.  The empty pool cgroups of a dead
        launcher go first (``orphaned_pool``), so that their parent can."""
        removed = []
        for parent in self.parent_dirs():
            base = os.path.dirname(parent)
            for name in self.fs.subdirs(base):
                path = os.path.join(base, name)
                if not name.startswith(PARENT_PREFIX) or path == parent:
                    continue
                self._remove_orphaned_pools(path)
                try:
                    self.fs.rmdir(path)
                except OSError:
                    continue  # busy (containers in it) or gone meanwhile
                removed.append(path)
        return removed

    def _remove_orphaned_pools(self, parent: str) -> None:
        for name in self.fs.subdirs(parent):
            if orphaned_pool(name):
                try:
                    self.fs.rmdir(os.path.join(parent, name))
                except OSError:
                    continue  # busy: a process still in it

    def cleanup(self, keep: Collection[str] = ()) -> list[str]:
        """Kill and remove every container cgroup of this service but ``keep``.

        Meant for start-up: cgroups left by a launcher that died hold
        containers nobody can reap or report any more.  Returns the names
        removed."""
        removed = []
        for name in self.leftovers():
            if name in keep:
                continue
            cgroup = self.open(name)
            cgroup.kill_all()
            if cgroup.remove():
                removed.append(name)
        return removed
