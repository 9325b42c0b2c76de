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
    what is appended to any of them until ``running()`` turns false."""
    offsets = []
    for path in paths:
        start = 0 if tail is None else tail_offset(path, tail)
        end = start
        for chunk in read_from(path, start):
            end += len(chunk)
            yield chunk
        offsets.append(end)
    if not follow:
        return
    while True:
        # Read `running` before reading the files: output written before the
        # exit is then always seen by the last pass below.
        alive = running()
        grew = False
        for index, path in enumerate(paths):
            for chunk in read_from(path, offsets[index]):
                offsets[index] += len(chunk)
                grew = True
                yield chunk
        if not alive:
            return
        if not grew:
            time.sleep(FOLLOW_POLL_SECONDS)
