"""The launcher's time index of log files (runtime/logindex.py): inotify to records."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime import libc, logindex
from runtime.launcher import watch
from runtime.launcher.ready import Source
from runtime.logindex import RECORD
from tests.unit.test_launcher_watch import _close_launchers, launcher_with, make_entry

__all__ = ["_close_launchers"]  # the fixture that closes what launcher_with made


def records(path: Path) -> list[tuple[int, int]]:
    return list(RECORD.iter_unpack(path.read_bytes())) if path.exists() else []


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_inotify_events_are_decoded_with_their_names() -> None:
    data = watch.INOTIFY_EVENT.pack(3, libc.IN_MODIFY, 0, 16) + b"name".ljust(16, b"\0")
    data += watch.INOTIFY_EVENT.pack(-1, libc.IN_Q_OVERFLOW, 0, 0)
    assert watch.inotify_events(data) == [(3, libc.IN_MODIFY), (-1, libc.IN_Q_OVERFLOW)]


def test_growth_is_recorded_at_most_once_per_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pause long enough that a loaded machine's 100 appends cannot outlast it
    # (with the real 10 ms, they sometimes did, and the timeout was already 0).
    pause = 0.5
    monkeypatch.setattr(logindex, "MIN_INTERVAL", pause)
    launcher = launcher_with()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"")
    err.write_bytes(b"")
    entry = make_entry(log_paths=(str(out), str(err)))
    launcher.watch.watch(entry)
    try:
        assert len(entry.logs.watches) == 2 and len(launcher.watch.watched) == 2
        launcher.watch.record()  # the first look: nothing written yet
        assert records(tmp_path / "stdout.idx") == []

        before = time.time_ns()
        append(out, b"a\n")
        ready = launcher.selector.select(timeout=5)
        assert [key.data.source for key, _ in ready] == [Source.INOTIFY]
        launcher.watch.drain()
        launcher.watch.record()
        [(size, when)] = records(tmp_path / "stdout.idx")
        assert size == 2 and before <= when <= time.time_ns()
        assert records(tmp_path / "stderr.idx") == []  # it did not grow

        # A chatty writer: the loop does not look again within the pause.
        for _ in range(100):
            append(out, b"b\n")
        assert launcher.selector.select(timeout=0) == []
        assert 0 < launcher._select_timeout() <= pause
        time.sleep(pause)
        launcher.watch.record()  # the pause is over: inotify is back
        assert launcher.watch.paused_until is None
        assert [key.data.source for key, _ in launcher.selector.select(timeout=5)] == [
            Source.INOTIFY
        ]
        launcher.watch.drain()
        launcher.watch.record()
        assert [size for size, _ in records(tmp_path / "stdout.idx")] == [2, 202]

        append(err, b"last words\n")  # then the exit, before the loop saw it
        launcher.watch.close_indexes(entry)
        assert [size for size, _ in records(tmp_path / "stderr.idx")] == [11]
        assert entry.logs.watches == [] and launcher.watch.watched == {}
    finally:
        pass


def test_without_a_watch_the_logs_are_polled(tmp_path: Path, monkeypatch) -> None:
    def no_watch(fd: int, path: str, mask: int) -> int:
        raise OSError(28, "inotify_add_watch: No space left on device")

    monkeypatch.setattr(libc, "inotify_add_watch", no_watch)
    launcher = launcher_with()
    out = tmp_path / "stdout.log"
    out.write_bytes(b"")
    entry = make_entry(log_paths=(str(out), str(tmp_path / "stderr.log")))
    launcher.watch.watch(entry)
    launcher.entries.update({"c": entry})
    try:
        assert entry.logs.watches == [] and launcher.watch.unwatched == {"c": entry}
        assert launcher._select_timeout() == watch.OUTPUT_POLL_SECONDS
        append(out, b"x\n")
        launcher.watch.record()
        assert [size for size, _ in records(tmp_path / "stdout.idx")] == [2]
        launcher.watch.close_indexes(entry)
        assert launcher.watch.unwatched == {}
    finally:
        pass
