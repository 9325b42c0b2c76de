"""runtime.launcher.watch: the output cap helpers, the loop timer, the inotify wake-up
(no root, no clone)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from runtime.launcher import server, watch
from runtime.launcher.entry import Entry, Process
from runtime.launcher.protocol import ExitStatus
from runtime.launcher.ready import Source
from runtime.spec import Limits


def write(path, size: int, byte: bytes = b"x") -> str:
    path.write_bytes(byte * size)
    return str(path)


@pytest.mark.parametrize(
    ("out", "err", "cap", "kept"),
    [
        (10_000, 0, 1000, (1000, 0)),  # one stream overflowed: it keeps the whole cap
        (0, 10_000, 1000, (0, 1000)),
        (10_000, 100, 1000, (900, 100)),  # a small stream is kept whole
        (100, 10_000, 1000, (100, 900)),
        (10_000, 10_000, 1000, (500, 500)),  # both overflowed: half each
        (600, 600, 1000, (500, 500)),
        (300, 200, 1000, (300, 200)),  # under the cap: untouched
    ],
)
def test_truncate_logs_keeps_at_most_the_cap(tmp_path, out, err, cap, kept):
    paths = (write(tmp_path / "o", out, b"o"), write(tmp_path / "e", err, b"e"))
    watch.truncate_logs(paths, cap)
    sizes = ((tmp_path / "o").stat().st_size, (tmp_path / "e").stat().st_size)
    assert sizes == kept
    assert sum(sizes) <= cap
    assert (tmp_path / "o").read_bytes() == b"o" * kept[0]  # the beginning is what is kept


def test_output_size_counts_both_and_tolerates_missing_files(tmp_path):
    assert watch.output_size((write(tmp_path / "o", 7), str(tmp_path / "missing"))) == 7


SUB_RECORDS = {
    "deadline": "limiting",
    "released_at": "limiting",
    "limits": "limiting",
    "cgroup": "limiting",
    "watches": "logs",
}


def make_entry(**changes) -> Entry:
    process = Process(pid=1, pidfd=-1, pid_start_time=None, sync_write=-1, error_read=-1)
    entry = Entry(id="c", process=process)
    for key, value in changes.items():
        if key == "log_paths":
            entry.logs.paths = value
        elif key in SUB_RECORDS:
            setattr(getattr(entry, SUB_RECORDS[key]), key, value)
        else:
            setattr(entry, key, value)
    return entry


_made: list[tuple[server.Launcher, socket.socket]] = []


@pytest.fixture(autouse=True)
def _close_launchers():
    yield
    while _made:
        launcher, listener = _made.pop()
        launcher.selector.close()
        listener.close()
        if launcher.watch.inotify_fd >= 0:
            os.close(launcher.watch.inotify_fd)


def launcher_with(*entries: Entry) -> server.Launcher:
    """A launcher that holds ``entries`` and listens on nothing."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    launcher = server.Launcher(listener)
    launcher.selector.unregister(listener)  # never listening: select would say "ready"
    launcher.entries.update({str(i): e for i, e in enumerate(entries)})
    _made.append((launcher, listener))
    return launcher


def test_select_timeout_is_the_nearest_deadline():
    now = time.monotonic()
    launcher = launcher_with(
        make_entry(deadline=now + 0.3, released_at=now), make_entry(deadline=now + 5)
    )
    assert 0.2 < launcher._select_timeout() <= 0.3


def test_select_timeout_polls_often_for_capped_output_and_idles_otherwise():
    now = time.monotonic()
    capped = make_entry(limits=Limits(output_bytes=10), released_at=now)
    assert launcher_with(capped)._select_timeout() == watch.OUTPUT_POLL_SECONDS
    assert launcher_with(make_entry())._select_timeout() == 1.0
    watched = make_entry(limits=Limits(output_bytes=10), released_at=now, watches=[1, 2])
    assert launcher_with(watched)._select_timeout() == 1.0  # inotify wakes the loop instead
    exited = make_entry(
        limits=Limits(output_bytes=10), released_at=now, exit=ExitStatus(0, None, "t")
    )
    assert launcher_with(exited)._select_timeout() == 1.0


def test_a_write_to_a_capped_log_wakes_the_loop(tmp_path):
    launcher = launcher_with()
    paths = (write(tmp_path / "o", 0), write(tmp_path / "e", 0))
    entry = make_entry(limits=Limits(output_bytes=10), log_paths=paths)
    launcher.watch.watch(entry)
    assert len(entry.logs.watches) == 2
    assert launcher.selector.select(timeout=0) == []
    with open(paths[1], "ab") as f:
        f.write(b"more")
    ready = launcher.selector.select(timeout=5)
    assert [key.data.source for key, _ in ready] == [Source.INOTIFY]
    launcher.watch.drain()
    assert launcher.selector.select(timeout=0) == []
    launcher.watch.unwatch(entry)
    assert entry.logs.watches == []
    launcher.watch.drain()  # inotify(7): removing a watch queues IN_IGNORED
    with open(paths[0], "ab") as f:
        f.write(b"unwatched")
    assert launcher.selector.select(timeout=0.05) == []
