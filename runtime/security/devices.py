"""The devices cgroup (v1): which device nodes a container may open.

Capabilities do not cover this: CAP_MKNOD is in Docker's default set, and
with the host's root filesystem /dev/vda is right there, owned by root.  The
devices controller (Documentation/admin-guide/cgroup-v1/devices.rst) is
what Docker (and runc) use to say "no": the container's cgroup denies all
devices (``a`` to ``devices.deny``) and allows back only Docker's default
list, so ``open()`` of any other node, wherever it was made, fails with
EPERM, and so does mknod(2) of a node outside the list.

The list is written once per launcher, not per container: a v1 devices
cgroup starts with its parent's list (Documentation/admin-guide/cgroup-v1/
devices.rst), so a container with no rules of its own gets one mkdir(2)
in ``<parent>/standard``, which holds Docker's list; writing the list into
each container's cgroup cost 13 writes (0.2-0.4 ms of the launch).  A
container with rules of its own (``--device``, ``DeviceCgroupRules``) gets
its cgroup beside it, the list and its rules written in.  A parent may
only narrow its children's lists, never widen them, hence the two.

Only v1: on a host whose devices controller lives in cgroup v2, the
equivalent is a BPF_PROG_TYPE_CGROUP_DEVICE program, which we do not have
yet (docs/security.md lists it as missing); ``available()`` says which.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable

from runtime.cgroups.base import orphaned_pool

ROOT = "/sys/fs/cgroup/devices"
PARENT = "mydocker"

#: runc's default allowed devices (libcontainer/specconv AllowedDevices),
#: as Docker grants them: mknod of anything, and read/write only of these.
ALLOWED: tuple[str, ...] = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",  # /dev/null
    "c 1:5 rwm",  # /dev/zero
    "c 1:7 rwm",  # /dev/full
    "c 1:8 rwm",  # /dev/random
    "c 1:9 rwm",  # /dev/urandom
    "c 5:0 rwm",  # /dev/tty
    "c 5:1 rwm",  # /dev/console
    "c 5:2 rwm",  # /dev/ptmx
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm",  # /dev/net/tun
)


def available(root: str = ROOT) -> bool:
    """Is the v1 devices controller mounted here?"""
    return os.path.exists(os.path.join(root, "devices.deny"))


def _write(path: str, value: str) -> None:
    # os.open/os.write: one syscall each, without the text io stack (the
    # flags of open(path, "w"); a control file ignores O_TRUNC).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def parent_for(state_dir: str) -> str:
    """``mydocker/<16 hex digits>``: one parent per state dir, hence per launcher.

    Each launcher sweeps only its own parent (``sweep``), so it never
    removes a cgroup that another service's launcher has just made."""
    digest = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:16]
    return f"{PARENT}/{digest}"


#: The parent's subdirectory whose list is ``ALLOWED`` (module docstring).
STANDARD = "standard"
#: The standard cgroups this process made or found holding ``ALLOWED``.
_standard_ready: set[str] = set()


def create(
    container_id: str, parent: str = PARENT, root: str = ROOT, extra: tuple[str, ...] = ()
) -> str:
    """A cgroup for the container that denies all but ``ALLOWED`` and the
    container's own ``extra`` rules (its devices, ``DeviceCgroupRules``); its path."""
    parent = os.path.join(root, parent)
    if not extra:
        path = _in_standard(os.path.join(parent, STANDARD), container_id)
        if path is not None:
            return path
    path = os.path.join(parent, container_id)
    _mkdir(path)
    try:
        _restrict(path, extra)
    except BaseException:
        os.rmdir(path)
        raise
    return path


def _mkdir(path: str) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path)
    except FileNotFoundError:
        # Another launcher, starting, removed our parent while it was empty
        # (remove_empty_parents) between the two calls: make it again.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path)


def _restrict(path: str, extra: tuple[str, ...] = ()) -> None:
    _write(os.path.join(path, "devices.deny"), "a")
    for rule in ALLOWED + extra:
        _write(os.path.join(path, "devices.allow"), rule)


def _in_standard(standard: str, container_id: str) -> str | None:
    """``standard/container_id``, made; None when ``standard`` exists with
    another list (never rewritten: narrowing a parent narrows the running
    containers under it, and widening it back does not widen them)."""
    path = os.path.join(standard, container_id)
    if standard in _standard_ready:
        try:
            os.mkdir(path)
            return path
        except FileNotFoundError:  # removed while empty (a sweep): made again
            _standard_ready.discard(standard)
    try:
        _mkdir(standard)
    except FileExistsError:
        if _rules(standard) != set(ALLOWED):
            return None
    else:
        try:
            _restrict(standard)
        except BaseException:
            os.rmdir(standard)
            raise
    _standard_ready.add(standard)
    os.mkdir(path)
    return path


def _rules(path: str) -> set[str]:
    """devices.list as a set of rules; empty when unreadable."""
    try:
        with open(os.path.join(path, "devices.list")) as f:
            return {line.strip() for line in f if line.strip()}
    except OSError:
        return set()


def rename(path: str, container_id: str) -> str:
    """A warm child's devices cgroup renamed to the container's id (the pool,
    runtime/launcher/pool.py); its rules and process stay.  The new path."""
    new = os.path.join(os.path.dirname(path), container_id)
    os.rename(path, new)
    return new


def join(path: str, pid: int) -> None:
    """Move ``pid`` (and the threads it will have) into the cgroup."""
    _write(os.path.join(path, "cgroup.procs"), str(pid))


def sweep(parent: str, root: str = ROOT) -> int:
    """Remove the empty cgroups a killed launcher left under ``parent``.

    A launcher that dies (SIGKILL) never reaps its containers; when they end,
    their cgroups stay behind, empty.  The next launcher of the same state
    dir calls this at start; cgroups that still hold processes are kept
    (rmdir(2) answers EBUSY).  Returns how many were removed."""
    own = os.path.join(root, parent)
    return _remove_empty_subdirs(os.path.join(own, STANDARD)) + _remove_empty_subdirs(own)


def remove_empty_parents(keep: str, root: str = ROOT) -> int:
    """rmdir the empty per-state-dir parents under ``mydocker/`` but ``keep``.

    A parent outlives its launcher when the launcher is killed, and test runs
    make many; rmdir(2) refuses one that still has cgroups (EBUSY), so a
    parent in use is never removed; the empty pool cgroups of a dead
    launcher in it go first (``orphaned_pool``).  Returns how many parents
    were removed."""
    top = os.path.join(root, PARENT)
    try:
        names = os.listdir(top)
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(top, name)
        if name != os.path.basename(keep) and os.path.isdir(path):
            # A dead launcher's pool cgroups, then its standard cgroup once
            # empty (another launcher's is made again at its next create).
            _remove_empty_subdirs(os.path.join(path, STANDARD), only=orphaned_pool)
            _remove_empty_subdirs(path, only=lambda n: n == STANDARD or orphaned_pool(n))
    return _remove_empty_subdirs(top, keep=os.path.basename(keep))


def _remove_empty_subdirs(
    directory: str, keep: str | None = None, only: Callable[[str], bool] | None = None
) -> int:
    """rmdir every subdirectory of ``directory`` but ``keep`` (and, with
    ``only``, the names it accepts) that rmdir(2) lets go (an empty
    cgroup); how many went."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        path = os.path.join(directory, name)
        if name == keep or not os.path.isdir(path) or (only is not None and not only(name)):
            continue
        try:
            os.rmdir(path)
        except OSError:
            continue
        removed += 1
    return removed


def remove_parent(parent: str, root: str = ROOT) -> None:
    """rmdir a launcher's parent on its way out, if no container is left in it."""
    standard = os.path.join(root, parent, STANDARD)
    _standard_ready.discard(standard)
    with contextlib.suppress(OSError):
        os.rmdir(standard)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(root, parent))


def remove(path: str) -> None:
    """rmdir the cgroup once its processes are gone; a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        try:
            os.rmdir(path)
        except OSError as err:
            if err.errno != errno.EBUSY:
                raise
