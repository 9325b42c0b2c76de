"""Masked and read-only paths of /proc and /sys, as Docker sets them.

Some files of procfs and sysfs are global to the host whatever the
namespaces, and guarded by nothing but root's file mode:
``/proc/sysrq-trigger`` (write ``b`` and the host reboots) and
``/proc/sys/kernel/core_pattern`` (a ``|program`` there runs as host root on
the next crash) need no capability at all.  So, as Docker and runc do
(moby ``oci/defaults.go``): the read-only paths are bind-mounted onto
themselves and remounted read-only; the masked ones are covered, files by
``/dev/null``, directories by an empty read-only tmpfs.  A path this
kernel does not have is skipped.

With a root filesystem plan (runtime/rootfs.py, every container the API
creates) ``protect`` runs after pivot_root and the user's mounts; without
one, right after the fresh /proc and /sys.
"""

from __future__ import annotations

import os
import stat

from runtime import libc

MASKED: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)

READ_ONLY: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_LOCKED = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def mask(path: str) -> None:
    """Cover ``path``: /dev/null over a file, an empty read-only tmpfs over a directory."""
    # One stat(2) says both whether it exists and what it is (this runs for
    # a dozen paths in every child).
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if is_dir:
        libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY | _LOCKED, "size=0")
    else:
        libc.mount("/dev/null", path, None, libc.MS_BIND)


def read_only(path: str) -> None:
    """Bind ``path`` onto itself, then remount that bind read-only.

    mount(2): MS_RDONLY on the first bind is ignored; a second call with
    MS_REMOUNT|MS_BIND changes the per-mount flags.  The nosuid, nodev and
    noexec of our /proc are kept (dropping them in a remount is EPERM in a
    user namespace).
    """
    try:
        libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
    except FileNotFoundError:
        return  # mount(2) ENOENT: not on this kernel, as a stat would have said
    libc.mount(None, path, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | _LOCKED)


def protect() -> None:
    for path in MASKED:
        mask(path)
    for path in READ_ONLY:
        read_only(path)
