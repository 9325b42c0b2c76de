"""Container directories made ahead: ``<state>/spares/<token>/``, each with
its empty ``stdout.log`` and ``stderr.log``, renamed into place at a create.

    SpareDirs
    ├── take(cdir)   rename(2) a spare to ``cdir``: one directory entry
    │                moved, no inode allocated on the launch's way; False
    │                when none is ready (the caller makes the dir as before)
    └── make_one()   one more spare, up to ``STOCK``: called by the create
                     once the launcher has been asked, so that it overlaps
                     the clone instead of preceding it

Why: the container's directory (made by the API) and its two log files
(created by the launcher before the clone) were three ext4 inode
allocations on the launch's critical path, the log files in the launcher's
single thread, which every launch waits for: 0.1-0.4 ms together on this
machine, more after a burst of removals (ext4 skips recently deleted
inodes, docs/performance.md "A launch's files").  With a spare, the
directory is a rename and the launcher's ``O_CREAT`` opens find the files.
The logs stay on the state dir's disk, as before.

Safe across crashes: a spare holds nothing but empty files, so a spare
left by an earlier process, or one half made when it died, is as good as
a new one (the launcher's open creates a missing log file), and the
records never name one.  A spare taken is gone from the stock at once
(the rename), so two creates never share one.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

from runtime.layout import LOG_STREAMS, log_in

log = logging.getLogger("mydocker.runtime")

#: Spares kept made: a burst of this many creates finds one each.
STOCK = 4


class SpareDirs:
    def __init__(self, root: str, stock: int = STOCK) -> None:
        """``root``: <state>/spares (made on first use)."""
        self.root = root
        self.stock = stock
        self._ready: list[str] | None = None  # listed on first use
        self._lock = threading.Lock()

    def _spares(self) -> list[str]:
        """The ready spares (the lock held): an earlier process's too."""
        if self._ready is None:
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                names = os.listdir(self.root)
            except OSError as err:
                log.warning("no spare container dirs: %s", err)
                return []  # none now; looked at again next time
            self._ready = [os.path.join(self.root, name) for name in names]
        return self._ready

    def take(self, cdir: str) -> bool:
        """``cdir`` made from a spare; False when none is ready."""
        with self._lock:
            spares = self._spares()
            if not spares:
                return False
            spare = spares.pop()
        try:
            os.rename(spare, cdir)
        except OSError as err:
            log.warning("a spare container dir could not be used: %s", err)
            return False
        return True

    def make_one(self) -> None:
        """One more spare if the stock is short; a failure (a full disk) is
        logged: the next create makes its directory itself."""
        with self._lock:
            if len(self._spares()) >= self.stock:
                return
        path = os.path.join(self.root, secrets.token_hex(8))
        try:
            os.mkdir(path, 0o700)
            for stream in LOG_STREAMS:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                os.close(os.open(log_in(path, stream), flags, 0o640))
        except OSError as err:
            log.warning("making a spare container dir failed: %s", err)
            return
        with self._lock:
            self._spares().append(path)
