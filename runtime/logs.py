"""Reading a container's captured output.

The launcher points the container's stdout and stderr at two append-only
files in its state dir (``stdout.log``, ``stderr.log``): no pipe sits between
the container and the disk, so a container that writes fast never stalls on
a slow reader, and the output survives restarts of the service.  The
price: the relative order of stdout and stderr lines is not kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

CHUNK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.05


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
) -> Iterator[tuple[int, bytes]]:
    """Like ``stream``, with each chunk tagged by the index of its path.

    The files are opened here, before the first chunk is asked for, and read
    through those descriptors: output stays readable after the container's
    directory has been removed (an auto-removed container), unlink(2).
    ``from_end`` skips what is already there (an attach sees new output);
    ``heartbeat`` yields ``(0, b"")`` after each idle poll while following,
    so a consumer whose client went away regains control within a poll;
    with ``sleep=False`` the heartbeat comes without the poll's sleep, which
    is then the consumer's to do (outside any worker thread)."""
    files = [_open(path) for path in paths]
    offsets = []
    for path, f in zip(paths, files, strict=True):
        if f is None:
            offsets.append(0)
        elif from_end:
            offsets.append(os.fstat(f.fileno()).st_size)
        else:
            offsets.append(0 if tail is None else tail_offset(path, tail))
    return _tagged(paths, files, offsets, follow, running, heartbeat, sleep)


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
                    time.sleep(FOLLOW_POLL_SECONDS)
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
