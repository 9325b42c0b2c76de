"""The launcher process's start-up: ``python -m runtime.launcher --state-dir DIR``.

main             the state dir's lock, the socket (root only), the pid
                 files' tmpfs (runtime/rundir.py), the seccomp
                 filter compiled once, leftover cgroups removed, the
                 pooled children's layer dirs removed, the
                 favordynmods hierarchy held with ``--favordynmods``
                 (runtime/cgroups/dynmods.py), then the loop (server.py)
                 until it goes idle; clean-up after it
_cgroup_manager  this machine's cgroup driver, minus what a dead launcher left
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import socket
import sys

from runtime import cgroups, rundir
from runtime.cgroups import dynmods
from runtime.launcher.poollayers import POOL_LAYERS, PoolLayers
from runtime.launcher.server import Launcher
from runtime.security import devices, seccomp

log = logging.getLogger("mydocker.launcher")


def _cgroup_manager(state_dir: str) -> cgroups.Manager | None:
    """This machine's cgroup driver, after removing what a previous launcher left.

    We hold the state dir's lock, so no other launcher serves it: a
    container cgroup under our parent now belongs to a launcher that died,
    and its processes can be neither reaped nor reported; kill them."""
    try:
        manager = cgroups.manager(state_dir)
    except OSError as err:
        log.warning("cgroups unavailable (%s): no limits, no accounting", err)
        return None
    if manager is None:
        log.warning("no cgroup controllers mounted: no limits, no accounting")
        return None
    log.info("cgroup %s driver", manager.version)
    try:
        removed = manager.cleanup()
    except OSError as err:
        log.warning("removing leftover cgroups failed: %s", err)
        removed = []
    if removed:
        log.warning("removed %d leftover cgroups: %s", len(removed), ", ".join(removed))
    manager.remove_parent()
    swept = manager.remove_empty_parents()
    if swept:
        log.info("removed %d empty cgroup parents of other service instances", len(swept))
    return manager


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.launcher")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument(
        "--favordynmods",
        action="store_true",
        help="hold a favordynmods cgroup hierarchy: cgroup joins skip an RCU grace period",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s launcher[%(process)d] %(levelname)s %(message)s"
    )
    state_dir = os.path.abspath(args.state_dir)
    lock_fd = os.open(os.path.join(state_dir, "launcher.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            log.info("another launcher holds %s; exiting", state_dir)
            return 0
        raise
    path = os.path.join(state_dir, "launcher.sock")
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # the socket is the launcher's whole API: root only
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(64)
    log.info("listening on %s", path)
    try:
        seccomp.warm()  # once here, instead of once in every child
    except Exception as err:  # noqa: BLE001 - each child reports it by step, as before
        log.warning("cannot compile the seccomp filter ahead: %s", err)
    # Layout's ``run_dir`` (runtime/layout.py would load the records here).
    run_dir = os.path.join(state_dir, rundir.DIRNAME)
    rundir.ensure(run_dir)  # the pid files' tmpfs
    cgroup_manager = _cgroup_manager(state_dir)
    devices_parent = devices.parent_for(state_dir)
    if devices.available():
        swept = devices.sweep(devices_parent)
        if swept:
            log.info("removed %d empty devices cgroups left by an earlier launcher", swept)
        devices.remove_empty_parents(keep=devices_parent)
    pool_layers = PoolLayers(os.path.join(state_dir, *POOL_LAYERS))
    swept = pool_layers.sweep()
    if swept:
        log.info("removed %d pooled children's layer dirs left by an earlier launcher", swept)
    # Held for the launcher's life, closed by the kernel when it dies.
    favor_fd = dynmods.hold() if args.favordynmods and cgroup_manager is not None else None
    if favor_fd is not None:
        log.info("cgroup joins favoured: a favordynmods hierarchy is held")
    try:
        Launcher(listener, cgroup_manager, devices_parent, pool_layers).serve_forever()
    finally:
        rundir.release(run_dir)  # first: it never raises
        if favor_fd is not None:
            os.close(favor_fd)
        # Only unlink the socket we created, then let the lock go with us.
        os.unlink(path)
        if cgroup_manager is not None:
            cgroup_manager.remove_parent()
        if devices.available():
            devices.remove_parent(devices_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
