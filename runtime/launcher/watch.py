"""The launcher's watch on running entries: log times, timeouts, output caps.

    Watch          the inotify fd, which log grew, entries polled instead
    ├── watch / unwatch / close_indexes     per entry (its Logs)
    ├── drain / record                      inotify -> (size, time) index records
    ├── timeout                             how long the loop may sleep
    └── enforce                             timeout_seconds and output_bytes: kill
    kill_all, truncate_logs, output_size    the limits' actions and measures

Log times (runtime/logindex.py): an inotify watch (IN_MODIFY) is on every
log file of every container and exec; when the loop sees a file grow it
appends ``(size, now)`` to the file's ``.idx``.  After reading inotify the
loop leaves it alone for ``logindex.MIN_INTERVAL``, so a container that
writes all the time costs at most one wake-up and one record per file per
10 ms, however often it writes.

Limits (docs/limits.md): the loop's select timeout doubles as the timer for
``timeout_seconds``; the same inotify watch wakes it to check the sizes
against ``output_bytes``; either kills the whole cgroup.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import struct
import time
from collections.abc import Iterable

from runtime import libc, logindex
from runtime.launcher.entry import Entry
from runtime.launcher.ready import Ready, Source

log = logging.getLogger("mydocker.launcher")

#: How often the log sizes of containers with ``output_bytes`` are polled
#: when no inotify watch could be added (inotify(7): max_user_watches).
#: The logs are files the container writes directly (no pipe to count
#: through), so a writer overshoots by what it writes before the check;
#: the files are cut back to the cap after the kill.
OUTPUT_POLL_SECONDS = 0.05
#: inotify(7): struct inotify_event's fixed part (wd, mask, cookie, len).
INOTIFY_EVENT = struct.Struct("iIII")


class Watch:
    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.inotify_fd = -1  # created with the first entry
        self.watched: dict[int, logindex.IndexWriter] = {}  # inotify wd -> its log's index
        self.grown: set[logindex.IndexWriter] = set()  # seen growing, not recorded yet
        self.unwatched: dict[str, Entry] = {}  # no inotify watch: polled instead
        #: While set (time.monotonic()), the inotify fd is out of the selector.
        self.paused_until: float | None = None
        self._ready = Ready(Source.INOTIFY, self._drain)

    def watch(self, entry: Entry) -> None:
        """Wake the loop on every write to the entry's logs: to date them
        (runtime/logindex.py) and to check ``output_bytes``.

        inotify(7) reports writes through any fd, the container's included,
        and coalesces identical unread events, so a flood of writes costs
        one wake-up per loop turn; the check follows the write at once
        instead of up to a poll period later."""
        logs = entry.logs
        logs.indexes = [logindex.IndexWriter(path) for path in logs.paths]
        try:
            if self.inotify_fd < 0:
                self.inotify_fd = libc.inotify_init1(libc.IN_NONBLOCK | libc.IN_CLOEXEC)
                self.selector.register(self.inotify_fd, selectors.EVENT_READ, self._ready)
            for path, index in zip(logs.paths, logs.indexes, strict=True):
                wd = libc.inotify_add_watch(self.inotify_fd, path, libc.IN_MODIFY)
                logs.watches.append(wd)
                self.watched[wd] = index
        except OSError as err:
            # ENOSPC: inotify(7)'s max_user_watches is reached.
            log.warning("%s: no inotify watch (%s); polling its log sizes", entry.id, err)
            self.unwatch(entry)
            self.unwatched[entry.id] = entry
        # An exec runs already: what it wrote before the watch was added
        # gets its record on this loop turn.
        self.grown.update(logs.indexes)

    def unwatch(self, entry: Entry) -> None:
        for wd in entry.logs.watches:
            self.watched.pop(wd, None)
            try:
                libc.inotify_rm_watch(self.inotify_fd, wd)
            except OSError:
                pass  # EINVAL: the file is gone, and its watch went with it
        entry.logs.watches.clear()

    def _drain(self, mask: int) -> None:
        self.drain()

    def drain(self) -> None:
        """Note which logs grew, then leave inotify unread for a while.

        Events that arrive meanwhile queue up in the kernel (identical ones
        merged), so the pause bounds the wake-ups and index records of a
        container that writes without pause; the record then carries the
        time of the first look after the pause."""
        while True:
            try:
                data = os.read(self.inotify_fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            for wd, mask in inotify_events(data):
                if mask & libc.IN_Q_OVERFLOW:
                    self.grown.update(self.watched.values())  # lost events: look at all
                elif wd in self.watched:
                    self.grown.add(self.watched[wd])
        if self.paused_until is None:
            self.selector.unregister(self.inotify_fd)
            self.paused_until = time.monotonic() + logindex.MIN_INTERVAL

    def record(self) -> None:
        """Index records for the logs seen growing; inotify back after its pause."""
        if self.grown or self.unwatched:
            now_ns = time.time_ns()
            for entry in self.unwatched.values():
                self.grown.update(entry.logs.indexes)
            for index in self.grown:
                _note(index, now_ns)
            self.grown.clear()
        paused = self.paused_until
        if paused is not None and time.monotonic() >= paused:
            self.paused_until = None
            self.selector.register(self.inotify_fd, selectors.EVENT_READ, self._ready)

    def close_indexes(self, entry: Entry) -> None:
        """At exit, once the last output is in the logs: its final records."""
        now_ns = time.time_ns()
        for index in entry.logs.indexes:
            _note(index, now_ns)
            index.close()
            self.grown.discard(index)
        self.unwatch(entry)
        self.unwatched.pop(entry.id, None)

    def timeout(self, entries: Iterable[Entry], timeout: float) -> float:
        """Wake up for the nearest deadline, and often while output is capped."""
        now = time.monotonic()
        for entry in entries:
            limiting = entry.limiting
            if entry.exit is not None or limiting.killed:
                continue
            if limiting.deadline is not None:
                timeout = min(timeout, max(limiting.deadline - now, 0.0))
            capped = limiting.limits.output_bytes is not None
            if capped and limiting.released_at is not None and not entry.logs.watches:
                timeout = min(timeout, OUTPUT_POLL_SECONDS)
        if self.unwatched:
            timeout = min(timeout, OUTPUT_POLL_SECONDS)
        if self.paused_until is not None:
            timeout = min(timeout, max(self.paused_until - now, 0.0))
        return timeout


def enforce(entries: Iterable[Entry]) -> None:
    """Kill what ran out of ``timeout_seconds`` or wrote over ``output_bytes``."""
    now = time.monotonic()
    for entry in entries:
        limiting = entry.limiting
        if entry.exit is not None or limiting.killed or limiting.released_at is None:
            continue
        if limiting.deadline is not None and now >= limiting.deadline:
            log.info("%s: timeout_seconds ran out; killing it", entry.id)
            limiting.timed_out = True
            kill_all(entry)
        elif limiting.limits.output_bytes is not None:
            size = output_size(entry.logs.paths)
            if size > limiting.limits.output_bytes:
                log.info("%s: output_bytes exceeded (%d bytes); killing it", entry.id, size)
                limiting.output_truncated = True
                kill_all(entry)


def kill_all(entry: Entry) -> None:
    """SIGKILL the container's PID 1 and everything in its cgroup.

    pid_namespaces(7): when PID 1 of a namespace dies the kernel kills
    every other process in it, and none can fork any more; the cgroup
    sweep also catches what joined the container later (exec)."""
    entry.limiting.killed = True
    try:
        signal.pidfd_send_signal(entry.process.pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if entry.limiting.cgroup is not None:
        entry.limiting.cgroup.kill_all(rounds=1)  # what is left goes at exit (reaper.py)


def _note(index: logindex.IndexWriter, now_ns: int) -> None:
    try:
        index.note(now_ns)
    except OSError as err:  # ENOSPC: the log goes on, without times
        log.warning("%s: no more time records: %s", index.path, err)


def inotify_events(data: bytes) -> list[tuple[int, int]]:
    """``(wd, mask)`` of each struct inotify_event in a read(2) of inotify(7)."""
    events = []
    position = 0
    while position + INOTIFY_EVENT.size <= len(data):
        wd, mask, _cookie, name_length = INOTIFY_EVENT.unpack_from(data, position)
        events.append((wd, mask))
        position += INOTIFY_EVENT.size + name_length
    return events


def output_size(paths: tuple[str, str]) -> int:
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except FileNotFoundError:
            pass
    return total


def truncate_logs(paths: tuple[str, str], cap: int) -> None:
    """Cut stdout + stderr back to ``cap`` bytes in all.

    The order of writes across the two files is unknown, so each stream
    keeps at least half the cap when both overflowed, and a stream that
    stayed small keeps all of it (its last lines are often the error)."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except FileNotFoundError:
            sizes.append(0)
    out, err = sizes
    keep_err = min(err, max(cap // 2, cap - out))
    keep_out = min(out, cap - keep_err)
    for path, size, keep in ((paths[0], out, keep_out), (paths[1], err, keep_err)):
        if size > keep:
            os.truncate(path, keep)
