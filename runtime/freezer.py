"""Pause and unpause: a container's cgroup frozen and thawed, v1 and v2.

    Freezer(fs, version, directory)   one container's freezer
      freeze()     every process stopped where it stands, until ``thaw``
      thaw()       running again
      frozen()     what the kernel says now (the truth across restarts)
    locate(pid)    (version, directory) of the cgroup that freezes ``pid``'s
                   container, from /proc/PID/cgroup; ``None`` without one

v1 (the kernel's cgroup-v1/freezer-subsystem.rst): write ``FROZEN`` to
``freezer.state``; it reads ``FREEZING`` until every task is stopped, and a
task that forks meanwhile can leave it there, so the write is repeated until
it reads ``FROZEN`` (runc does the same).  Frozen tasks do not die, even of
SIGKILL, until thawed: kill and stop thaw first (runtime/lifecycle.py).

v2 (cgroup-v2.rst, "Core Interface Files"): write ``1`` to ``cgroup.freeze``;
``cgroup.events`` says ``frozen 1`` once every process is stopped.

The freezer is the kernel's: nothing here is recorded, so a restarted
service sees a paused container as paused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from runtime import procfs
from runtime.cgroups.fs import CgroupFs
from runtime.errors import Unavailable

#: How long freezing may take before it is undone and refused: tasks in an
#: uninterruptible sleep (D state) only freeze once they leave it.
FREEZE_TIMEOUT = 5.0
POLL = 0.002

V1_STATE = "freezer.state"
V2_FREEZE = "cgroup.freeze"
V2_EVENTS = "cgroup.events"


class Freezer:
    def __init__(
        self,
        fs: CgroupFs,
        version: str,
        directory: str,
        *,
        timeout: float = FREEZE_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if version not in ("v1", "v2"):
            raise ValueError(f"cgroup version {version!r}")
        self.fs = fs
        self.version = version
        self.directory = directory
        self.timeout = timeout
        self._sleep = sleep

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def frozen(self) -> bool:
        """Whether every process of the cgroup is frozen (``False`` once it is gone)."""
        try:
            if self.version == "v1":
                return self.fs.read(self._path(V1_STATE)).strip() == "FROZEN"
            return _keyed(self.fs.read(self._path(V2_EVENTS)), "frozen") == "1"
        except FileNotFoundError:
            return False

    def freeze(self) -> None:
        """Freeze the cgroup and return once it is frozen; ``Unavailable``
        (thawed again) when it is not within ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        while True:
            if self.version == "v1":
                self.fs.write(self._path(V1_STATE), "FROZEN")
            elif not self.frozen():
                self.fs.write(self._path(V2_FREEZE), "1")
            if self.frozen():
                return
            if time.monotonic() >= deadline:
                self.thaw()
                raise Unavailable(
                    f"the processes of {self.directory} did not freeze within "
                    f"{self.timeout:g} s (a process in uninterruptible sleep?); try again"
                )
            self._sleep(POLL)

    def thaw(self) -> None:
        if self.version == "v1":
            self.fs.write(self._path(V1_STATE), "THAWED")
        else:
            self.fs.write(self._path(V2_FREEZE), "0")


def _keyed(text: str, key: str) -> str | None:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return parts[1]
    return None


def locate(
    pid: int,
    own: dict[str, str] | None = None,
    mounts: dict[str, str] | None = None,
) -> tuple[str, str] | None:
    """(version, directory) of the cgroup that freezes ``pid`` and its
    container, or ``None`` when it sits in no cgroup of its own.

    A v1 ``freezer`` hierarchy wins: on a hybrid layout the unified
    hierarchy has no controllers, and the container shares its cgroup
    there with the launcher, which must never be frozen.  A cgroup is only
    the container's when it is not the service's own (``own``)."""
    theirs = procfs.cgroups(pid)
    own = procfs.cgroups("self") if own is None else own
    mounts = procfs.cgroup_mounts() if mounts is None else mounts
    for hierarchy, path in theirs.items():
        if "freezer" in hierarchy.split(",") and hierarchy in mounts:
            if own.get(hierarchy) == path:
                return None
            return "v1", mounts[hierarchy].rstrip("/") + path
    if any(h and h != "name=systemd" for h in theirs):
        return None  # v1 without a freezer hierarchy mounted
    unified = theirs.get("")
    if unified is None or "" not in mounts or own.get("") == unified:
        return None
    return "v2", mounts[""].rstrip("/") + unified
