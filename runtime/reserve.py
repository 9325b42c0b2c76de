"""A little disk space held back for recording exits when the state dir fills up.

When the filesystem of the state dir is full, SQLite cannot append to its
write-ahead log, so even the one-row update that records a container's exit
fails (SQLITE_FULL).  ``Reserve`` keeps a file of ``size`` bytes allocated in
the state dir (posix_fallocate(3): the blocks are really taken, on tmpfs
too); ``release()`` deletes it to give those blocks back at the moment an
exit could not be written, and ``ensure()`` takes them again once there is
room.  Launches stop well before (``Admission`` refuses them below
``MIN_FREE_BYTES``), so the reserve is for the records of what already runs.
"""

from __future__ import annotations

import errno
import logging
import os
import threading

log = logging.getLogger("mydocker.reserve")

RESERVE_BYTES = 2 << 20


def _allocate(fd: int, size: int) -> None:
    """Take ``size`` bytes of blocks for ``fd``: posix_fallocate(3), or zeros
    written where the filesystem has no fallocate (EOPNOTSUPP)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
    block = b"\0" * (1 << 16)
    for _ in range(0, size, len(block)):
        os.write(fd, block)
    os.fsync(fd)


class Reserve:
    def __init__(self, path: str, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size
        self._lock = threading.Lock()

    def ensure(self, headroom: int = 0) -> bool:
        """Allocate the reserve if it is missing and ``size + headroom`` bytes
        are free; return whether it is in place."""
        with self._lock:
            if os.path.exists(self.path):
                return True
            try:
                stats = os.statvfs(os.path.dirname(self.path))
                if stats.f_bavail * stats.f_frsize < self.size + headroom:
                    return False
                fd = os.open(self.path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    _allocate(fd, self.size)
                finally:
                    os.close(fd)
                os.rename(self.path + ".tmp", self.path)
            except OSError as err:
                log.warning("could not set aside %d bytes in %s: %s", self.size, self.path, err)
                try:
                    os.unlink(self.path + ".tmp")
                except OSError:
                    pass
                return False
            return True

    def released(self) -> bool:
        """True while the reserve is not in place (given up, or never set aside)."""
        return not os.path.exists(self.path)

    def release(self) -> bool:
        """Give the reserved blocks back; True if there was a reserve to give."""
        with self._lock:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                return False
            log.warning("the state dir is full: released the %d bytes set aside", self.size)
            return True
