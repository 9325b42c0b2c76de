"""favordynmods: make the cgroup join skip its RCU grace period.

    hold(name)   a detached cgroup v1 hierarchy of ours, ``none,name=<name>,
                 favordynmods``, kept alive by the returned fd; None (logged)
                 when the kernel refuses it

Why.  Moving a process into a cgroup (writing ``cgroup.procs``) takes the
writer side of ``cgroup_threadgroup_rwsem``, a per-CPU rw-semaphore that
fork and exit take as readers.  Its writer first switches the readers to
their slow path and waits for an RCU grace period (kernel/cgroup/cgroup.c,
``cgroup_attach_lock``; ``percpu_down_write`` -> ``rcu_sync_enter``), and
on a busy machine a grace period lasts milliseconds: the first join of a
burst waited 8-13 ms at the 90th percentile here (docs/performance.md).

Since Linux 6.0 a hierarchy mounted with ``favordynmods`` keeps the
readers on their slow path for as long as it exists (cgroup-v2.rst,
"favordynmods"; cgroup.c ``cgroup_favor_dynmods`` calls ``rcu_sync_enter``
once and leaves it entered), so no writer waits for a grace period any
more.  The semaphore is global, so one hierarchy anywhere flips it for the
whole machine; cgroup v1 accepts the option too (cgroup-v1.c,
``cgroup1_parse_param``).  A named hierarchy without controllers
(``none,name=...``) changes nothing else: every process stays in its root.

The cost, for every process on the machine: fork and exit take the
semaphore's reader slow path (an atomic operation and a full memory
barrier instead of a per-CPU increment) while the hierarchy lives.

Lifetime.  The hierarchy is made with fsopen(2)/fsmount(2) and never
attached to a path: only the fd holds it.  When the holder exits, even by
SIGKILL, the last reference goes, the kernel destroys the hierarchy (it has
no child cgroups) and the semaphore returns to its fast mode.  Two holders
of the same name share one hierarchy (the kernel reuses a named root).
"""

from __future__ import annotations

import logging

from runtime import libc

log = logging.getLogger("mydocker.launcher")

NAME = "mydocker"


def hold(name: str = NAME) -> int | None:
    """The fd that keeps a favordynmods hierarchy alive; None when the
    kernel has no such option (before 6.0: EINVAL) or refuses named v1
    hierarchies (``cgroup_no_v1=named``), which only costs the speed."""
    try:
        return libc.fsmount_new("cgroup", {"name": name}, flags=("none", "favordynmods"))
    except OSError as err:
        log.warning("no favordynmods cgroup hierarchy (%s): cgroup joins wait for RCU", err)
        return None
