"""Directories removed off the request's way: ``<state>/trash/<token>/``.

    Trash
    ├── discard(path)   rename(2) ``path`` into the trash (gone from its
    │                   place at once), and wake the emptier; a rename that
    │                   fails is an rmtree here, as before
    └── _empty          a thread, started on demand: rmtree of whatever the
                        trash holds (an earlier process's leftovers too),
                        then it lingers ``LINGER`` seconds for more and ends

Why: a container's removal (``DELETE``, auto-remove) unlinked its files
and directories before it answered; on this machine's ext4 (``discard``)
each freed block is trimmed synchronously, so the ``rmtree`` of one
container's dir took 0.3 ms at the median and 2.9 ms at p90, more after a
burst of removals (docs/performance.md, "A launch's files").  A rename
within the state dir is one directory entry moved.

Safe: a reader that holds a log file of the removed container open goes on
reading it (the unlink comes later, as it came before); the records never
name the trash; a crash leaves only garbage there, which the next emptier
removes.  A full disk gets its space back a moment after the removal
instead of with it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from typing import Any

log = logging.getLogger("mydocker.runtime")

#: How long the emptier waits for more work before its thread ends.
LINGER = 2.0


def _log_rmtree_error(function: Any, path: str, excinfo: Any) -> None:
    log.warning("could not remove %s: %s", path, excinfo[1])


class Trash:
    def __init__(self, root: str) -> None:
        """``root``: <state>/trash (made on first use)."""
        self.root = root
        self._lock = threading.Lock()
        self._work = threading.Event()
        self._emptier: threading.Thread | None = None

    def discard(self, path: str) -> None:
        """``path`` gone from its place now, its files soon."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.rename(path, os.path.join(self.root, secrets.token_hex(8)))
        except FileNotFoundError:
            return
        except OSError as err:
            log.warning("could not move %s to the trash (%s): removing it here", path, err)
            shutil.rmtree(path, onerror=_log_rmtree_error)
            return
        with self._lock:
            self._work.set()
            if self._emptier is None:
                self._emptier = threading.Thread(target=self._empty, name="trash", daemon=True)
                self._emptier.start()

    def _empty(self) -> None:
        while True:
            self._work.clear()
            try:
                names = os.listdir(self.root)
            except OSError as err:
                log.warning("could not list the trash: %s", err)
                names = []
            for name in names:
                shutil.rmtree(os.path.join(self.root, name), onerror=_log_rmtree_error)
            if self._work.wait(LINGER):
                continue
            with self._lock:
                if not self._work.is_set():  # nothing came meanwhile: done
                    self._emptier = None
                    return
