"""Container directories made ahead: ``<state>/spares/<token>/``, each with
its empty ``stdout.log`` and ``stderr.log``, renamed into place at a create.

    SpareDirs
    ├── take(cdir)   rename(2) a spare to ``cdir``: one directory entry
    │                moved, no inode allocated on the launch's way; False
    │                when none is ready (the caller makes the dir as before)
    ├── after_create()  called by a create once the launcher has been asked:
    │                the stock refilled once creates pause (``QUIET_SECONDS``,
    │                on a thread of its own), or at once when it is down to
    │                ``LOW``
    ├── make_one()   one more spare, up to ``STOCK``
    └── close()      the filler thread ended (``Runtime.close``)

Why: the container's directory (made by the API) and its two log files
(created by the launcher before the clone) were three ext4 inode
allocations on the launch's critical path, the log files in the launcher's
single thread, which every launch waits for: 0.1-0.4 ms together on this
machine, more after a burst of removals (ext4 skips recently deleted
inodes, docs/performance-log.md "A launch's files").  With a spare, the
directory is a rename and the launcher's ``O_CREAT`` opens find the files.
The logs stay on the state dir's disk, as before.

Why not during the launch: three inode allocations (0.4-3.4 ms of CPU on
a disk where other work deletes files: ext4's allocator) made while the
launcher and the child work take the CPUs they need; made at a pause, a
host-image launch over HTTP answered 1.6-2.6 ms sooner, paired against
the tree before (busybox: no change; docs/performance-log.md "The floor,
per target").  A burst of creates,
which leaves no pause, makes them as before: at once, once the launcher is
asked.

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
import time

from runtime.layout import LOG_STREAMS, log_in

log = logging.getLogger("mydocker.runtime")

#: Spares kept made: a burst of this many creates finds one each.
STOCK = 4
#: A stock this low is refilled at once, not at the next pause.
LOW = 1
#: The pause after a create before the stock is refilled: longer than a
#: pooled launch's answer on this machine (≈10 ms, docs/performance.md).
QUIET_SECONDS = 0.02


class SpareDirs:
    def __init__(self, root: str, stock: int = STOCK, quiet: float | None = None) -> None:
        """``root``: <state>/spares (made on first use); ``quiet``: the pause
        (``QUIET_SECONDS`` unless given)."""
        self.root = root
        self.stock = stock
        self.quiet = QUIET_SECONDS if quiet is None else quiet
        self._ready: list[str] | None = None  # listed on first use
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        #: When the refill is due (monotonic), None when none is wanted.
        self._due: float | None = None
        self._filler: threading.Thread | None = None
        self._closed = False
        self._making = 0

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

    def after_create(self) -> None:
        """A create took a spare (or found none) and asked the launcher: refill
        the stock once creates pause, or now if it is down to ``LOW``."""
        with self._lock:
            short = len(self._spares()) <= LOW
            idle, self._due = self._due is None, time.monotonic() + self.quiet
            if self._closed:
                pass  # the runtime is closing: the next start makes its spares
            elif self._filler is None:
                self._filler = threading.Thread(
                    target=self._fill_when_quiet, name="spare-dirs", daemon=True
                )
                self._filler.start()
            elif idle:
                # Only an idle filler needs waking: a waiting one finds the
                # later due when its wait ends (a wake-up per create spared).
                self._wake.notify()
        if short:
            self.make_one()

    def _fill_when_quiet(self) -> None:
        """The filler thread: waits for a due refill and for its pause, then
        fills the stock (a daemon: a spare half made at exit is still good)."""
        while True:
            with self._lock:
                while self._due is None or (wait := self._due - time.monotonic()) > 0:
                    if self._closed:
                        return
                    self._wake.wait(None if self._due is None else wait)
                self._due = None
            for _ in range(self.stock):
                # A create meanwhile: its launch runs now; wait for the next pause.
                if self._due is not None or not self.make_one():
                    break

    def close(self) -> None:
        """End the filler thread (at its next wake: a refill under way ends first)."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        if self._filler is not None:
            self._filler.join()

    def make_one(self) -> bool:
        """One more spare if the stock is short: False when it was full or
        the making failed (a full disk: logged, and the next create makes
        its directory itself)."""
        with self._lock:
            # Those being made count: a create's and the filler's at once
            # would otherwise both pass.
            if len(self._spares()) + self._making >= self.stock:
                return False
            self._making += 1
        path = os.path.join(self.root, secrets.token_hex(8))
        try:
            os.mkdir(path, 0o700)
            for stream in LOG_STREAMS:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                os.close(os.open(log_in(path, stream), flags, 0o640))
        except OSError as err:
            log.warning("making a spare container dir failed: %s", err)
            path = ""
        with self._lock:
            self._making -= 1
            if path:
                self._spares().append(path)
        return bool(path)
