"""Cgroups: one per container, under one parent per service instance.

detect(root)          "v1", "v2" or None, from what is mounted at ``root``
manager(state_dir)    the driver for this machine, parent named for the state dir
parent_name()         ``mydocker-<12 hex of sha256(state dir)>``: parallel
                      services (tests) never share a parent
base.Cgroup           add(pid), stats(), procs(), kill_all(), remove(), procs_files
base.Manager          create(name, limits), open(name), leftovers(),
                      cleanup(keep) (for start-up), remove_parent(),
                      remove_empty_parents() (other instances' empty ones)
v1, v2                the two drivers; fs.CgroupFs the file access they share
"""

from __future__ import annotations

import hashlib
import os

from runtime.cgroups.base import (
    PARENT_PREFIX,
    Cgroup,
    CgroupError,
    Kill,
    Manager,
    Stats,
    orphaned_pool,
    pool_name,
)
from runtime.cgroups.fs import CgroupFs
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager

__all__ = [
    "Cgroup",
    "CgroupError",
    "CgroupFs",
    "Manager",
    "Stats",
    "V1Manager",
    "V2Manager",
    "detect",
    "manager",
    "orphaned_pool",
    "own_cgroups",
    "parent_name",
    "pool_name",
]

ROOT = "/sys/fs/cgroup"


def detect(root: str = ROOT, fs: CgroupFs | None = None) -> str | None:
    """v2 when the root is a cgroup2 mount (it lists ``cgroup.controllers``),
    v1 when controllers are mounted under it (a hybrid's empty
    ``unified`` cgroup2 is ignored: it has no controllers), else None."""
    fs = fs or CgroupFs()
    if fs.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if any(fs.exists(os.path.join(root, c)) for c in ("memory", "pids", "cpu", "cpuacct")):
        return "v1"
    return None


def own_cgroups(text: str) -> dict[str, str]:
    """Parse /proc/self/cgroup: controller -> path; ``""`` is the v2 line (``0::/x``)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            result[""] = path
        for controller in controllers.split(","):
            if controller:
                result[controller] = path
    return result


def parent_name(state_dir: str) -> str:
    digest = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()
    return f"{PARENT_PREFIX}{digest[:12]}"


def manager(
    state_dir: str,
    root: str = ROOT,
    proc_cgroup: str = "/proc/self/cgroup",
    fs: CgroupFs | None = None,
    kill: Kill = os.kill,
) -> Manager | None:
    """The driver for what is mounted at ``root``; None without cgroups."""
    fs = fs or CgroupFs()
    version = detect(root, fs)
    if version is None:
        return None
    own = own_cgroups(fs.read(proc_cgroup))
    parent = parent_name(state_dir)
    if version == "v2":
        return V2Manager(root, parent, own.get("", "/"), fs, kill)
    return V1Manager(root, parent, own, fs, kill)
