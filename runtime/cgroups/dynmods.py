"""favordynmods: make the cgroup join skip its RCU grace period (opt-in).

    hold(name)   a detached cgroup v1 hierarchy of ours, ``none,name=<name>,
                 favordynmods``, kept alive by the returned fd; None (logged)
                 when the kernel refuses it

Why.  Moving a process into a cgroup (writing ``cgroup.procs``) takes the
writer side of ``cgroup_threadgroup_rwsem``, a per-CPU rw-semaphore that
fork and exit take as readers.  Its writer first switches the readers to
their slow path and waits for an RCU grace period (kernel/cgroup/cgroup.c,
``cgroup_attach_lock``; ``percpu_down_write`` -> ``rcu_sync_enter``), and
on a busy machine a grace period lasts milliseconds: the first join of a
burst waited 13-14 ms at the 90th percentile here (docs/performance.md).

A hierarchy mounted with ``favordynmods`` (Linux 6.0; cgroup-v2.rst,
"favordynmods"; cgroup v1 accepts it too, cgroup-v1.c
``cgroup1_parse_param``) calls ``cgroup_favor_dynmods``, which enters the
semaphore's ``rcu_sync`` once and stays: readers keep the slow path, so no
writer waits for a grace period.  Since Linux 6.18 (commit 0568f89d4fb8,
"replace global percpu_rwsem with per threadgroup rwsem when writing to
cgroup.procs") it also switches the machine to a per-thread-group rwsem for
``cgroup.procs`` writes, and that switch cannot be undone until reboot (the
kernel warns when the option goes).  The semaphore is global: one
hierarchy anywhere changes it for the whole machine.  A named hierarchy
without controllers (``none,name=...``) changes nothing else: every process
stays in its root.

The cost, for every process on the machine: fork and exit take a slower
path (before 6.18: the per-CPU semaphore's reader slow path, an atomic
operation and a full barrier, while the hierarchy lives; since 6.18 also
a per-process rwsem, for good).  Hence off by default
(``--cgroup-favordynmods``); a host's administrator can get the same with
``cgroup_favordynmods=true`` on the kernel command line.

Lifetime.  The hierarchy is made with fsopen(2)/fsmount(2) and never
attached to a path: only the fd holds it.  When the holder exits, even by
SIGKILL, the last reference goes and the kernel destroys the hierarchy (it
has no child cgroups); before 6.18 the semaphore then returns to its fast
mode.  Two holders of the same name share one hierarchy (the kernel reuses
a named root).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable

from runtime import libc

log = logging.getLogger("mydocker.launcher")

NAME = "mydocker"
#: A dying hierarchy of the same name answers EBUSY for a grace period or two.
BUSY_RETRIES = 40
BUSY_SLEEP = 0.025


def hold(name: str = NAME, sleep: Callable[[float], None] = time.sleep) -> int | None:
    """The fd that keeps a favordynmods hierarchy alive; None when the
    kernel has no such option (before 6.0: EINVAL) or refuses named v1
    hierarchies (``cgroup_no_v1=named``), which only costs the speed.

    A hierarchy of that name whose last holder just went (a launcher
    restarted) is destroyed after an RCU grace period; until then the
    kernel answers EBUSY (cgroup-v1.c, ``cgroup1_root_to_use``): retry."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            return libc.fsmount_new("cgroup", {"name": name}, flags=("none", "favordynmods"))
        except OSError as err:
            if err.errno == errno.EBUSY and attempt < BUSY_RETRIES:
                sleep(BUSY_SLEEP)
                continue
            log.warning("no favordynmods cgroup hierarchy (%s): cgroup joins wait for RCU", err)
            return None
    return None  # not reached: the last attempt returns or logs
