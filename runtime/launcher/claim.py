"""A pooled child taken for a container (runtime/launcher/pool.py, runtime/pooled.py).

    Claim       what the create asked: the container's id and spec, its pid
                file, terminal size, and whether it starts at once (``go``)
    hand_over   the child's cgroups limited for the container (its counters
                were reset when it got ready, pool.py) and renamed to its
                id; its stdio opened; an overlay child's upper and work
                dirs moved into the container's layer dir (poollayers.py);
                the pid file written; then the spec and the stdio fds sent
                on its channel (SCM_RIGHTS).  The ``Process`` the launcher
                keeps, or None when the child cannot be used (its cgroup
                refused, it died): the cold path follows.
    plug        a bridge template's child, then: the network's /etc files
                as detached mounts in a second message (runtime/pooled.py),
                its parked veth plugged and its eth0 configured, while it
                runs its claim steps

The pid file goes before the spec: if the launcher dies from then on, the
API finds the child by that file and kills it (runtime/pids.py).  Unless
``go`` the child waits for the joined byte (``Spawner.release``) after its
spec-dependent steps; with ``go`` and a veth to plug (``plug_after``), at
its last step before execve, so that the plug overlaps the others.  The
cgroups are renamed before the spec goes, so that a started child, which
waits for nothing, runs its command in cgroups named for its container
(renaming them after the send, the child waiting for the joined byte at
its last step, was measured: docs/performance-log.md, "The cold path's
cgroups", its "The claim's cgroups").
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from runtime import cgroups, pids, pooled, terminal
from runtime.launcher.entry import Process
from runtime.launcher.plumbing import Plumber
from runtime.launcher.pool import Pool, Warm
from runtime.launcher.stdio import Paths, close_stdio, open_stdio
from runtime.launchtrace import Stamps
from runtime.security import devices
from runtime.spec import ContainerSpec

log = logging.getLogger("mydocker.launcher")


@dataclass(frozen=True)
class Claim:
    container_id: str
    spec: ContainerSpec
    pidfile: str | None
    tty_size: tuple[int, int] | None
    go: bool
    #: A veth to plug after the hand-over (a bridge template's child): a
    #: started child waits for the joined byte at its last step before
    #: execve, a created one at its first as always.
    plug_after: bool = False


def hand_over(
    pool: Pool,
    manager: cgroups.Manager | None,
    warm: Warm,
    claim: Claim,
    paths: Paths,
    stamps: Stamps,
) -> tuple[Process, terminal.Stdio] | None:
    """A bridge template's child keeps its channel open for ``plug``."""
    stdio = _adopt_cgroups_and_open(pool, manager, warm, claim, paths)
    if stdio is None:
        return None
    _rename_cgroups(manager, warm, claim.container_id)
    try:
        pool.move_layer(warm, claim.spec.rootfs)
    except OSError as err:
        close_stdio(stdio)
        pool.discard(warm)
        log.warning("%s: a pooled child's layer cannot be moved: %s", claim.container_id, err)
        return None
    try:
        if claim.pidfile is not None:
            pids.write_pidfile(claim.pidfile, warm.pid, warm.pid_start_time)
        message = pooled.claim_message(
            claim.spec, claim.tty_size, started=claim.go, wait_last=claim.go and claim.plug_after
        )
        socket.send_fds(warm.channel, [message], stdio.child_fds)
    except BaseException as err:
        close_stdio(stdio)
        pool.discard(warm)
        if isinstance(err, (BrokenPipeError, ConnectionError)):
            log.warning("%s: a pooled child died at its claim; cloning", claim.container_id)
            return None  # the cold path writes the same pid file again
        if claim.pidfile is not None:
            pids.remove_pidfile(claim.pidfile)
        raise
    stamps.stamp("go_sent")
    for fd in stdio.child_fds:
        os.close(fd)
    if warm.parked is None:
        warm.channel.close()
    process = Process(
        warm.pid,
        warm.pidfd,
        warm.pid_start_time,
        warm.sync_write,
        warm.error_read,
        go_sent=True,
        devices_cgroup=warm.devices_cgroup,
        pidfile=claim.pidfile,
        stamps=stamps,
    )
    return process, stdio


def _adopt_cgroups_and_open(
    pool: Pool, manager: cgroups.Manager | None, warm: Warm, claim: Claim, paths: Paths
) -> terminal.Stdio | None:
    """The container's limits written into the child's cgroups; then its
    stdio.  A cgroup that cannot be taken over discards the child (None)."""
    try:
        if warm.cgroup is not None:
            assert manager is not None
            manager.adopt(warm.cgroup, claim.spec.limits)
        return open_stdio(claim.spec.tty, claim.spec.stdin, paths)
    except cgroups.CgroupError as err:
        log.warning("%s: a pooled child's cgroup cannot be used: %s", claim.container_id, err)
        pool.discard(warm)
        return None
    except BaseException:
        pool.discard(warm)
        raise


def _rename_cgroups(manager: cgroups.Manager | None, warm: Warm, container_id: str) -> None:
    """The child's cgroups and devices cgroup named for the container.  Its
    limits are already written and nothing finds a cgroup by its name (the
    launcher keeps the object, the start-up clean-up takes every one under
    the parent, pause locates it by pid), so a name taken by a leftover
    only costs the name: the pool's stays, with a warning."""
    try:
        if warm.cgroup is not None:
            assert manager is not None
            warm.cgroup = manager.rename(warm.cgroup, container_id)
    except cgroups.CgroupError as err:
        log.warning("%s: its cgroup keeps the pool's name: %s", container_id, err)
    try:
        if warm.devices_cgroup is not None:
            warm.devices_cgroup = devices.rename(warm.devices_cgroup, container_id)
    except OSError as err:
        log.warning("%s: its devices cgroup keeps the pool's name: %s", container_id, err)


def plug(
    pool: Pool,
    plumber: Plumber,
    warm: Warm,
    spec: ContainerSpec,
    stdio: terminal.Stdio,
    go: bool = False,
) -> Callable[[], None] | None:
    """After the hand-over, while the child starts on its spec: the
    network's /etc files as detached mounts on its channel (the child takes
    them at its mount steps), then its parked veth plugged on the bridge and
    its eth0 configured, while the child runs its claim steps up to the wait
    for the joined byte (as a cold plug overlaps the child's mounts).  A
    failure kills the child and fails the launch, as a cold plug's.  With
    ``go`` (released in this turn) what can wait until after the joined byte
    is returned (``Plumber.plug_parked``)."""
    if warm.parked is None:
        return None
    try:
        try:
            trees = pooled.etc_trees(spec)
            try:
                pooled.send_trees(warm.channel, trees)
            finally:
                for fd in trees:
                    os.close(fd)
        finally:
            warm.channel.close()
        if spec.network is None:  # not a bridge template's spec (pool.py ``key``)
            warm.parked.close()
            return None
        return plumber.plug_parked(warm.parked, spec.network, defer=go)
    except BaseException:
        close_stdio(stdio)
        pool.discard(warm)
        raise
