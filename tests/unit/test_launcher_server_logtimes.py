"""The launcher's time index of log files (runtime/logindex.py): inotify to records."""

from __future__ import annotations

import os
import selectors
import time
from pathlib import Path

from runtime import libc, logindex
from runtime.launcher import server
from runtime.logindex import RECORD
from tests.unit.test_launcher_server_limits import launcher_with, make_entry


def records(path: Path) -> list[tuple[int, int]]:
    return list(RECORD.iter_unpack(path.read_bytes())) if path.exists() else []


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_inotify_events_are_decoded_with_their_names() -> None:
    data = server.INOTIFY_EVENT.pack(3, libc.IN_MODIFY, 0, 16) + b"name".ljust(16, b"\0")
    data += server.INOTIFY_EVENT.pack(-1, libc.IN_Q_OVERFLOW, 0, 0)
    assert server._inotify_events(data) == [(3, libc.IN_MODIFY), (-1, libc.IN_Q_OVERFLOW)]


def test_growth_is_recorded_at_most_once_per_pause(tmp_path: Path) -> None:
    launcher = launcher_with()
    launcher.selector = selectors.DefaultSelector()
    launcher.inotify_fd = -1
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"")
    err.write_bytes(b"")
    entry = make_entry(log_paths=(str(out), str(err)))
    launcher._watch_output(entry)
    try:
        assert len(entry.watches) == 2 and len(launcher.watched) == 2
        launcher._record_output()  # the first look: nothing written yet
        assert records(tmp_path / "stdout.idx") == []

        before = time.time_ns()
        append(out, b"a\n")
        ready = launcher.selector.select(timeout=5)
        assert [key.data for key, _ in ready] == [("inotify", None)]
        launcher._drain_inotify()
        launcher._record_output()
        [(size, when)] = records(tmp_path / "stdout.idx")
        assert size == 2 and before <= when <= time.time_ns()
        assert records(tmp_path / "stderr.idx") == []  # it did not grow

        # A chatty writer: the loop does not look again within the pause.
        for _ in range(100):
            append(out, b"b\n")
        assert launcher.selector.select(timeout=0) == []
        assert 0 < launcher._select_timeout() <= logindex.MIN_INTERVAL
        time.sleep(logindex.MIN_INTERVAL)
        launcher._record_output()  # the pause is over: inotify is back
        assert launcher.inotify_paused_until is None
        assert [key.data for key, _ in launcher.selector.select(timeout=5)] == [("inotify", None)]
        launcher._drain_inotify()
        launcher._record_output()
        assert [size for size, _ in records(tmp_path / "stdout.idx")] == [2, 202]

        append(err, b"last words\n")  # then the exit, before the loop saw it
        launcher._close_indexes(entry)
        assert [size for size, _ in records(tmp_path / "stderr.idx")] == [11]
        assert entry.watches == [] and launcher.watched == {}
    finally:
        launcher.selector.close()
        os.close(launcher.inotify_fd)


def test_without_a_watch_the_logs_are_polled(tmp_path: Path, monkeypatch) -> None:
    def no_watch(fd: int, path: str, mask: int) -> int:
        raise OSError(28, "inotify_add_watch: No space left on device")

    monkeypatch.setattr(libc, "inotify_add_watch", no_watch)
    launcher = launcher_with()
    launcher.selector = selectors.DefaultSelector()
    launcher.inotify_fd = -1
    out = tmp_path / "stdout.log"
    out.write_bytes(b"")
    entry = make_entry(log_paths=(str(out), str(tmp_path / "stderr.log")))
    launcher._watch_output(entry)
    launcher.entries = {"c": entry}
    try:
        assert entry.watches == [] and launcher.unwatched == {"c": entry}
        assert launcher._select_timeout() == server.OUTPUT_POLL_SECONDS
        append(out, b"x\n")
        launcher._record_output()
        assert [size for size, _ in records(tmp_path / "stdout.idx")] == [2]
        launcher._close_indexes(entry)
        assert launcher.unwatched == {}
    finally:
        launcher.selector.close()
        os.close(launcher.inotify_fd)
