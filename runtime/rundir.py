"""``<state>/run``: the launcher's runtime state, on a tmpfs it mounts (runc
keeps its state under /run, a tmpfs on most hosts, for the same reasons).

    ensure(path)    at the launcher's start: the directory, a tmpfs mounted
                    on it unless one already is
    sweep           the API's reconcile: files of containers nobody runs
    release(path)   at its clean exit: unmounted once empty

What is in it: ``<id>.pid`` for each container that may be running
(runtime/pids.py): written by the launcher before the child runs anything of
the command, removed once the child is reaped (runtime/launcher/reaper.py
``tidy``), or by the API once it has buried a dead launcher's container
(runtime/reconcile.py).  After its exit a container's record holds all
there is to know, so nothing stays here for long.

Why a tmpfs: on this machine's ext4 (mounted ``discard``) a pid file in the
container's directory meant an inode found among recently deleted ones,
a data block allocated at writeback, and at the removal that block freed
with a synchronous discard: 50-250 us at the launch and 0.2-0.4 ms at the
removal, against 10-40 us on a tmpfs (docs/performance-log.md, "A
launch's files").  The files are a few bytes and no use after a reboot, which ends
their processes too.

Lifetime: a mount belongs to the mount namespace, not to the process that
made it, so it outlives a launcher or an API killed with SIGKILL: the next
launcher finds it mounted, and the API finds the orphans' pid files in it.
A launcher that exits cleanly holds no container, so the directory is empty
then unless a dead launcher's container is still to be buried; only an
empty one is unmounted.  Where the mount is refused (no CAP_SYS_ADMIN), the
directory on the state dir's own filesystem is used, as before.
"""

from __future__ import annotations

import errno
import logging
import os

from runtime import libc

log = logging.getLogger("mydocker.launcher")

#: Under the state dir: Layout's ``run_dir``; ``<id>.pid`` in it.
DIRNAME = "run"
PIDFILE_SUFFIX = ".pid"
#: A limit, not a reservation: a pid file takes one page while it exists.
TMPFS_OPTIONS = "mode=0700,size=16m"
_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def ensure(path: str, mount: bool = True) -> None:
    """``path`` exists, with a tmpfs on it where the kernel lets us mount one
    (not over files an older launcher left there: they stay readable)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not mount or os.path.ismount(path) or os.listdir(path):
        return
    try:
        libc.mount("tmpfs", path, "tmpfs", _FLAGS, TMPFS_OPTIONS)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EACCES):
            raise
        log.warning("no tmpfs for the pid files (%s): on disk instead", err)


def sweep(state_dir: str, live: frozenset[str]) -> None:
    """A leftovers cleaner (runtime/leftovers.py), run by the reconcile after
    it buried what it found: the pid files of containers no launcher holds
    running (a launch that failed after its file was written, a burial
    whose removal failed)."""
    path = os.path.join(state_dir, DIRNAME)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        if name.endswith(PIDFILE_SUFFIX) and name[: -len(PIDFILE_SUFFIX)] not in live:
            try:
                os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass


def release(path: str) -> bool:
    """Unmount ``path`` if it is a mount and empty; whether it was."""
    try:
        if not os.path.ismount(path) or os.listdir(path):
            return False
        libc.umount2(path, libc.MNT_DETACH)
    except OSError as err:
        log.warning("could not unmount %s: %s", path, err)
        return False
    return True
