"""When each part of a log file was written: the sidecar time index.

The containers write their log files directly (runtime/logs.py), so the
files hold bytes and no times.  The launcher watches every log file
(inotify(7), IN_MODIFY) and, when it sees one grow, appends a record to the
file's index (``stdout.log`` -> ``stdout.idx``)::

    (size of the log when seen, unix time in ns when seen)

16 bytes, little-endian uint64s; appended with O_APPEND, so a reader never
sees half a record once it reads whole multiples of 16 bytes.  The sizes
only grow, so the records are sorted by offset.

A byte at ``offset`` was therefore written by the time of the first record
whose size is past ``offset``: that is the time a line is dated with, the
moment the launcher *saw* it (a few ms after the write, later when the
launcher is busy), never earlier than the write.  The writer keeps the
index small: at most one record per file per ``MIN_INTERVAL`` (the launcher
waits that long before it reads inotify again), and none unless the file
grew, so a chatty container adds at most 16 bytes per 10 ms per stream.

Bytes past the last record have no time yet (the launcher has not seen
them, or died first); so has every byte of a log written before this index
existed.  Callers date those with a fallback (runtime/output.py).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

RECORD = struct.Struct("<QQ")
#: At most one record per file per this many seconds.
MIN_INTERVAL = 0.01
#: Records read at a time while walking forward.
BLOCK_RECORDS = 256


def index_path(log_path: str) -> str:
    """``.../stdout.log`` -> ``.../stdout.idx``."""
    root, ext = os.path.splitext(log_path)
    return (root if ext == ".log" else log_path) + ".idx"


class IndexWriter:
    """The launcher's side: one per log file, appending when the file grew."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path
        self.path = index_path(log_path)
        self.offset = 0  # the size in the last record
        self._fd = -1
        self.broken = False  # a write failed (ENOSPC...): stop indexing this file

    def note(self, now_ns: int) -> bool:
        """Append ``(size, now_ns)`` if the log grew since the last record."""
        if self.broken:
            return False
        try:
            size = os.stat(self.log_path).st_size
        except FileNotFoundError:
            return False
        if size <= self.offset:
            return False
        try:
            if self._fd < 0:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o640)
            os.write(self._fd, RECORD.pack(size, now_ns))
        except OSError:
            self.broken = True
            raise
        self.offset = size
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class IndexReader:
    """Times of increasing offsets of one log file.

    ``time_at`` is asked with offsets that mostly only grow (one line after
    the other), so after one binary search it walks forward through the
    records a block at a time: reading a long log costs one pass over its
    index, not a search per line.  The index may not exist yet, or grow
    while it is read (a running container): both are looked at again on
    the next call."""

    def __init__(self, log_path: str) -> None:
        self.path = index_path(log_path)
        self._file: BinaryIO | None = None
        # Opened now if it is there: it stays readable if the container's
        # directory is removed meanwhile (an auto-removed container).
        self._open()
        self._next = -1  # the record to look at next; -1 before the first search
        self._last_query = -1
        self._block_start = 0
        self._block: list[tuple[int, int]] = []

    def time_at(self, offset: int) -> int | None:
        """The time (unix ns) of the first record past ``offset``, or ``None``."""
        if self._file is None and not self._open():
            return None
        if self._next < 0 or offset < self._last_query:
            self._next = self._search(offset)
        self._last_query = offset
        while True:
            record = self._record(self._next)
            if record is None:
                return None
            if record[0] > offset:
                return record[1]
            self._next += 1

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            return False
        return True

    def _count(self) -> int:
        assert self._file is not None
        return os.fstat(self._file.fileno()).st_size // RECORD.size

    def _search(self, offset: int) -> int:
        """The number of the first record whose size is past ``offset``."""
        low, high = 0, self._count()
        while low < high:
            middle = (low + high) // 2
            record = self._record(middle)
            if record is not None and record[0] <= offset:
                low = middle + 1
            else:
                high = middle
        return low

    def _record(self, number: int) -> tuple[int, int] | None:
        position = number - self._block_start
        if not 0 <= position < len(self._block):
            self._load(number)
            position = 0
            if not self._block:
                return None
        return self._block[position]

    def _load(self, number: int) -> None:
        assert self._file is not None
        self._file.seek(number * RECORD.size)
        data = self._file.read(BLOCK_RECORDS * RECORD.size)
        whole = len(data) - len(data) % RECORD.size
        self._block_start = number
        self._block = list(RECORD.iter_unpack(data[:whole]))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
