"""Where the bridge containers' /etc files live: a tmpfs the service owns.

    EtcDir
    ├── path(id)      <state>/etcfiles/<id>: the container's resolv.conf,
    │                 hosts and hostname (runtime/network/etcfiles.py)
    ├── ensure(dir)   the tmpfs mounted on first use, and the container's dir
    ├── remove(id)    at the container's removal
    └── sweep(ids)    at start-up: the dirs of containers no longer recorded

Why a tmpfs: making a directory and three files on this machine's ext4 cost
a bridge launch ~1 ms of the API's CPU, and several ms of wall time when
other writers load the journal; on a tmpfs it is ~0.1 ms
(docs/networking.md, "Where the time went").  The files are small and
rewritten in place (a connect); nothing in them needs to survive a reboot,
which ends their containers too.

Lifetime: a mount belongs to the mount namespace, not to the process that
made it, so the tmpfs outlives an API restart and a container that survives
one keeps its files, which a later connect still rewrites; a restarted
service finds the mount point already mounted and uses it.  It is never
unmounted by the service (a container may still bind its files); a host
reboot takes it away with the containers.  Where the mount is refused (no
CAP_SYS_ADMIN in the service's user namespace), the directory on the state
dir's own filesystem is used, as before.  Docker keeps these files in the
container's directory on disk; runc-based runtimes write them under /run,
a tmpfs on most hosts (not on this machine: /run is on the root ext4).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
from collections.abc import Iterable

from runtime import libc

log = logging.getLogger("mydocker.network")

#: Under the state dir: Layout's ``etc_files``.
DIRNAME = "etcfiles"
#: A limit, not a reservation: tmpfs takes pages as files are written (3
#: files of well under a page each per container).
TMPFS_OPTIONS = "mode=0700,size=64m"
_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


class EtcDir:
    def __init__(self, root: str, mount: bool = True) -> None:
        """``root``: <state>/etcfiles; ``mount`` False keeps it on disk (tests)."""
        self.root = root
        self._mount = mount
        self._ready = False
        self._lock = threading.Lock()

    def path(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def owns(self, directory: str) -> bool:
        """Whether ``directory`` is a container's dir of ours (not an older
        record's ``<container dir>/etc``)."""
        return os.path.dirname(directory) == self.root

    def ensure(self, directory: str) -> None:
        """``directory`` exists, on the tmpfs when it is one of ours."""
        if self.owns(directory):
            self._ensure_root()
            try:
                os.mkdir(directory, 0o755)
            except FileExistsError:
                pass
        else:
            os.makedirs(directory, mode=0o755, exist_ok=True)

    def _ensure_root(self) -> None:
        with self._lock:  # uncontended: ~0.1 us
            if self._ready:
                return
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            if self._mount and not os.path.ismount(self.root):
                try:
                    libc.mount("tmpfs", self.root, "tmpfs", _FLAGS, TMPFS_OPTIONS)
                except OSError as err:
                    if err.errno not in (errno.EPERM, errno.EACCES):
                        raise
                    log.warning("no tmpfs for the /etc files (%s): on disk instead", err)
            self._ready = True

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.path(container_id), ignore_errors=True)

    def sweep(self, recorded: Iterable[str]) -> None:
        """Remove the dirs of containers the records no longer have (removed
        while this process was not there to see it)."""
        try:
            present = os.listdir(self.root)
        except FileNotFoundError:
            return
        for name in set(present) - set(recorded):
            self.remove(name)
