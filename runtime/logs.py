"""Reading a container's captured output.

The launcher points the container's stdout and stderr at two append-only
files in its state dir (``stdout.log``, ``stderr.log``): no pipe sits between
the container and the disk, so a container that writes fast never stalls on
a slow reader, and the output survives restarts of the service.  The
price: the relative order of stdout and stderr lines is not kept, except
as far as their times tell it (``dated``).

Times: the files hold no times; their sidecar indexes (runtime/logindex.py)
say when the launcher saw each part of them.  ``dated`` reads line by line
and dates each line by its index, for timestamps and since/until.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from runtime.logindex import IndexReader
from runtime.timeutil import rfc3339_nano

CHUNK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.05
#: A follower's wait between idle polls (``time.sleep`` unless told otherwise).
Pause = Callable[[float], None]


def tail_offset(path: str, lines: int) -> int:
    """The offset where the last ``lines`` lines of a file start."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return 0
    if lines <= 0:
        return size
    with open(path, "rb") as f:
        position = size
        # A final newline ends the last line; it does not start a new one.
        f.seek(max(size - 1, 0))
        wanted = lines + 1 if f.read(1) == b"\n" else lines
        found = 0
        while position > 0:
            start = max(position - CHUNK, 0)
            f.seek(start)
            block = f.read(position - start)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                found += 1
                if found == wanted:
                    return start + index + 1
            position = start
    return 0


def read_from(path: str, offset: int) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            while chunk := f.read(CHUNK):
                yield chunk
    except FileNotFoundError:
        return


def stream(
    paths: Sequence[str],
    tail: int | None,
    follow: bool,
    running: Callable[[], bool],
) -> Iterator[bytes]:
    """The output in ``paths`` (one after the other), then, with ``follow``,
    what is appended to any of them until ``running()`` turns false.

    While following, an empty chunk means "nothing new yet": the caller waits
    (``FOLLOW_POLL_SECONDS``) before asking again.  The generator itself never
    sleeps, so it holds no thread between polls, and a caller whose client
    has gone simply stops asking (``app/longpoll.py``)."""
    for _, chunk in tagged(paths, tail, follow, running, heartbeat=True, sleep=False):
        yield chunk


def tagged(
    paths: Sequence[str],
    tail: int | None,
    follow: bool,
    running: Callable[[], bool],
    from_end: bool = False,
    heartbeat: bool = False,
    sleep: bool = True,
    pause: Pause = time.sleep,
) -> Iterator[tuple[int, bytes]]:
    """Like ``stream``, with each chunk tagged by the index of its path.

    The files are opened here, before the first chunk is asked for, and read
    through those descriptors: output stays readable after the container's
    directory has been removed (an auto-removed container), unlink(2).
    ``from_end`` skips what is already there (an attach sees new output);
    ``heartbeat`` yields ``(0, b"")`` after each idle poll while following,
    so a consumer whose client went away regains control within a poll;
    with ``sleep=False`` the heartbeat comes without the poll's sleep, which
    is then the consumer's to do (outside any worker thread).  ``pause``
    is that sleep: one that returns early when the process exits (Output's)
    ends the follow at the exit instead of up to a poll later."""
    files = [_open(path) for path in paths]
    offsets = _start_offsets(paths, files, tail, from_end)
    return _tagged(paths, files, offsets, follow, running, heartbeat, sleep, pause)


def _start_offsets(
    paths: Sequence[str], files: Sequence[BinaryIO | None], tail: int | None, from_end: bool
) -> list[int]:
    offsets = []
    for path, f in zip(paths, files, strict=True):
        if f is None:
            offsets.append(0)
        elif from_end:
            offsets.append(os.fstat(f.fileno()).st_size)
        else:
            offsets.append(0 if tail is None else tail_offset(path, tail))
    return offsets


def _open(path: str) -> BinaryIO | None:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by _tagged
    except FileNotFoundError:
        return None


def _tagged(
    paths: Sequence[str],
    files: list[BinaryIO | None],
    offsets: list[int],
    follow: bool,
    running: Callable[[], bool],
    heartbeat: bool,
    sleep: bool = True,
    pause: Pause = time.sleep,
) -> Iterator[tuple[int, bytes]]:
    try:
        for index, f in enumerate(files):
            for chunk in _read(f, offsets[index]):
                offsets[index] += len(chunk)
                yield index, chunk
        if not follow:
            return
        while True:
            # Read `running` before reading the files: output written before the
            # exit is then always seen by the last pass below.
            alive = running()
            grew = False
            for index, f in enumerate(files):
                if f is None:  # not created yet when we started
                    f = files[index] = _open(paths[index])
                for chunk in _read(f, offsets[index]):
                    offsets[index] += len(chunk)
                    grew = True
                    yield index, chunk
            if not alive:
                return
            if not grew:
                if sleep or not heartbeat:
                    pause(FOLLOW_POLL_SECONDS)
                if heartbeat:
                    yield 0, b""
    finally:
        for f in files:
            if f is not None:
                f.close()


def _read(f: BinaryIO | None, offset: int) -> Iterator[bytes]:
    if f is None:
        return
    f.seek(offset)
    while chunk := f.read(CHUNK):
        yield chunk


class Cursor:
    """Reads what is appended to log files, without blocking: for attach.

    ``read()`` returns the bytes written since the last call (stdout's, then
    stderr's), or ``b""``.  The files stay open, so a poll costs one read(2)
    per file; a file that does not exist yet is opened once it does.
    """

    def __init__(self, paths: Sequence[str], from_start: bool = True) -> None:
        self._paths = list(paths)
        self._files: list[BinaryIO | None] = [None] * len(paths)
        self._start = [0 if from_start else _size(p) for p in paths]

    def read(self, limit: int = CHUNK) -> bytes:
        return b"".join(chunk for _, chunk in self.read_streams(limit))

    def read_streams(self, limit: int = CHUNK) -> list[tuple[int, bytes]]:
        """``[(index of the file in paths, new bytes), ...]``, at most ``limit`` bytes."""
        out: list[tuple[int, bytes]] = []
        left = limit
        for index, path in enumerate(self._paths):
            f = self._files[index]
            if f is None:
                try:
                    f = self._files[index] = open(path, "rb")  # noqa: SIM115 - closed in close()
                except FileNotFoundError:
                    continue
                f.seek(self._start[index])
            chunk = f.read(left)
            if chunk:
                out.append((index, chunk))
                left -= len(chunk)
            if left <= 0:
                break
        return out

    def close(self) -> None:
        for f in self._files:
            if f is not None:
                f.close()
        self._files = [None] * len(self._paths)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


#: How long a follower holds a line the launcher has not dated yet (it
#: normally does within ``logindex.MIN_INTERVAL``) before dating it itself.
INDEX_PATIENCE_SECONDS = 1.0

#: ``(index of the path, unix time in ns, line)``; a heartbeat is ``(0, 0, b"")``.
DatedLine = tuple[int, int, bytes]


def dated(
    paths: Sequence[str],
    tail: int | None,
    follow: bool,
    running: Callable[[], bool],
    fallback: Callable[[], int],
    since: int | None = None,
    until: int | None = None,
    heartbeat: bool = False,
    sleep: bool = True,
    pause: Pause = time.sleep,
) -> Iterator[DatedLine]:
    """The output line by line, each with the time it was written: the
    time of the first index record past the line's start.

    A line the index does not cover yet is dated ``fallback()`` (the
    caller's best bound: the exit time, or now); while following a running
    process it is first held for up to ``INDEX_PATIENCE_SECONDS``, since
    the launcher records within milliseconds.  Lines are kept when
    ``since <= time <= until`` (unix ns, both optional, as Docker's are);
    following stops once ``until`` has passed.  What is already there is
    merged across the files by time (stdout first on a tie); what follows
    comes as it is read.  A last line without its newline is held while
    the process may complete it, and given as it is when the file stays
    unchanged for a poll or the process is gone.  ``heartbeat``,
    ``sleep`` and ``pause`` are ``tagged``'s.  The files are opened before this returns."""
    files = [_open(path) for path in paths]
    offsets = _start_offsets(paths, files, tail, False)
    readers = [_Lines(p, f, o) for p, f, o in zip(paths, files, offsets, strict=True)]
    return _dated(readers, follow, running, fallback, since, until, heartbeat, sleep, pause)


def _dated(
    readers: list[_Lines],
    follow: bool,
    running: Callable[[], bool],
    fallback: Callable[[], int],
    since: int | None,
    until: int | None,
    heartbeat: bool,
    sleep: bool,
    pause: Pause = time.sleep,
) -> Iterator[DatedLine]:
    def wanted(when: int) -> bool:
        return (since is None or when >= since) and (until is None or when <= until)

    try:
        alive = follow and running()
        first = [
            _numbered(number, reader.lines(fallback, flush=not alive, hold=alive))
            for number, reader in enumerate(readers)
        ]
        for item in heapq.merge(*first, key=lambda item: item[1]):
            if wanted(item[1]):
                yield item
        if not follow:
            return
        while True:
            # Read `running` before the files: what was written before the
            # exit is then always seen by the last pass below.
            alive = running() and (until is None or time.time_ns() <= until)
            grew = False
            for number, reader in enumerate(readers):
                for when, line in reader.lines(fallback, flush=not alive, hold=alive):
                    if wanted(when):
                        yield number, when, line
                grew = grew or reader.grew
            if not alive:
                return
            if not grew:
                # Quiet for a poll: an unfinished last line goes out as it is
                # (a prompt), and its rest later as a line of its own.
                for number, reader in enumerate(readers):
                    for when, line in reader.lines(fallback, flush=True, hold=True):
                        if wanted(when):
                            yield number, when, line
                if sleep or not heartbeat:
                    pause(FOLLOW_POLL_SECONDS)
                if heartbeat:
                    yield 0, 0, b""
    finally:
        for reader in readers:
            reader.close()


def _numbered(number: int, lines: Iterator[tuple[int, bytes]]) -> Iterator[DatedLine]:
    for when, line in lines:
        yield number, when, line


class _Lines:
    """One log file read into lines, each dated by the file's index."""

    def __init__(self, path: str, file: BinaryIO | None, offset: int) -> None:
        self.path = path
        self.file = file
        self.index = IndexReader(path)
        self.buffer = b""  # read, not given out yet; starts at `start` in the file
        self.start = offset
        self.read_to = offset
        self.grew = False  # the last lines() read something
        self.held_since: float | None = None

    def lines(
        self, fallback: Callable[[], int], flush: bool, hold: bool
    ) -> Iterator[tuple[int, bytes]]:
        """``(time, line)`` for the complete lines up to the file's end; the
        unfinished last one too with ``flush``.  With ``hold``, stop at a
        line the index does not date yet (it is given on a later call)."""
        self.grew = False
        if self.file is None:
            self.file = _open(self.path)  # not created yet when we started
            if self.file is None:
                return
        while True:
            position = 0
            while (newline := self.buffer.find(b"\n", position)) >= 0:
                when = self._time(fallback, hold)
                if when is None:
                    self.buffer = self.buffer[position:]
                    return
                line = self.buffer[position : newline + 1]
                position = newline + 1
                self.start += len(line)
                yield when, line
            self.buffer = self.buffer[position:]
            if len(self.buffer) >= CHUNK:
                # A line this long goes out in pieces (Docker cuts at 16 KiB),
                # so memory and copying stay bounded.
                when = self._time(fallback, hold)
                if when is None:
                    return
                piece, self.buffer = self.buffer, b""
                self.start += len(piece)
                yield when, piece
            self.file.seek(self.read_to)
            chunk = self.file.read(CHUNK)
            if not chunk:
                break
            self.grew = True
            self.read_to += len(chunk)
            self.buffer += chunk
        if flush and self.buffer:
            when = self._time(fallback, hold)
            if when is None:
                return
            line, self.buffer = self.buffer, b""
            self.start += len(line)
            yield when, line

    def _time(self, fallback: Callable[[], int], hold: bool) -> int | None:
        when = self.index.time_at(self.start)
        if when is not None:
            self.held_since = None
            return when
        if hold:
            now = time.monotonic()
            if self.held_since is None:
                self.held_since = now
            if now - self.held_since < INDEX_PATIENCE_SECONDS:
                return None
        self.held_since = None
        return fallback()

    def close(self) -> None:
        self.index.close()
        if self.file is not None:
            self.file.close()


def joined(lines: Iterator[DatedLine], timestamps: bool) -> Iterator[bytes]:
    """``dated`` lines as chunks of bytes (with ``timestamps``, each line
    after its RFC 3339 time and a space); a heartbeat stays ``b""``."""
    return batched(
        (
            rfc3339_nano(when).encode() + b" " + line if timestamps and line else line
            for _, when, line in lines
        ),
        CHUNK,
    )


def batched(pieces: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """``pieces`` gathered into chunks of about ``limit`` bytes, so that a
    long log is not one write (and one worker-thread hop) per line; an empty
    piece (a heartbeat) sends what is gathered, then itself."""
    batch = bytearray()
    for piece in pieces:
        if not piece:
            if batch:
                yield bytes(batch)
                batch.clear()
            yield b""
            continue
        batch += piece
        if len(batch) >= limit:
            yield bytes(batch)
            batch.clear()
    if batch:
        yield bytes(batch)
