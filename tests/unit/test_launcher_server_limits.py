"""The launcher's output cap helpers and its loop timer (no root, no clone)."""

from __future__ import annotations

import time
from typing import cast

import pytest

from runtime import cgroups
from runtime.launcher import server
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
    server._truncate_logs(paths, cap)
    sizes = ((tmp_path / "o").stat().st_size, (tmp_path / "e").stat().st_size)
    assert sizes == kept
    assert sum(sizes) <= cap
    assert (tmp_path / "o").read_bytes() == b"o" * kept[0]  # the beginning is what is kept


def test_output_size_counts_both_and_tolerates_missing_files(tmp_path):
    assert server._output_size((write(tmp_path / "o", 7), str(tmp_path / "missing"))) == 7


def make_entry(**changes) -> server.Entry:
    entry = server.Entry(id="c", pid=1, pidfd=-1, pid_start_time=None, sync_write=-1, error_read=-1)
    for key, value in changes.items():
        setattr(entry, key, value)
    return entry


def launcher_with(*entries: server.Entry) -> server.Launcher:
    launcher = server.Launcher.__new__(server.Launcher)
    launcher.entries = {str(i): e for i, e in enumerate(entries)}
    launcher.unremoved = {}
    launcher.watched = {}
    launcher.grown = set()
    launcher.unwatched = {}
    launcher.inotify_paused_until = None
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
    assert launcher_with(capped)._select_timeout() == server.OUTPUT_POLL_SECONDS
    assert launcher_with(make_entry())._select_timeout() == 1.0
    watched = make_entry(limits=Limits(output_bytes=10), released_at=now, watches=[1, 2])
    assert launcher_with(watched)._select_timeout() == 1.0  # inotify wakes the loop instead
    exited = make_entry(limits=Limits(output_bytes=10), released_at=now, exit={"exit_code": 0})
    assert launcher_with(exited)._select_timeout() == 1.0


def test_a_write_to_a_capped_log_wakes_the_loop(tmp_path):
    import os
    import selectors

    launcher = launcher_with()
    launcher.selector = selectors.DefaultSelector()
    launcher.inotify_fd = -1
    paths = (write(tmp_path / "o", 0), write(tmp_path / "e", 0))
    entry = make_entry(limits=Limits(output_bytes=10), log_paths=paths)
    launcher._watch_output(entry)
    try:
        assert len(entry.watches) == 2
        assert launcher.selector.select(timeout=0) == []
        with open(paths[1], "ab") as f:
            f.write(b"more")
        ready = launcher.selector.select(timeout=5)
        assert [key.data for key, _ in ready] == [("inotify", None)]
        launcher._drain_inotify()
        assert launcher.selector.select(timeout=0) == []
        launcher._unwatch_output(entry)
        assert entry.watches == []
        launcher._drain_inotify()  # inotify(7): removing a watch queues IN_IGNORED
        with open(paths[0], "ab") as f:
            f.write(b"unwatched")
        assert launcher.selector.select(timeout=0.05) == []
    finally:
        launcher.selector.close()
        os.close(launcher.inotify_fd)


class FakeManager:
    def __init__(self) -> None:
        self.parent_removals = 0

    def remove_parent(self) -> None:
        self.parent_removals += 1


def test_the_parent_goes_with_the_last_container_cgroup():
    manager = FakeManager()
    launcher = launcher_with(make_entry(cgroup=object()))
    launcher.cgroups = cast(cgroups.Manager, manager)  # only remove_parent is called
    launcher._remove_parent_if_unused()
    assert manager.parent_removals == 0  # a container still has its cgroup
    launcher.entries["0"].cgroup = None
    launcher.unremoved = {"x": (cast(cgroups.Cgroup, object()), 3)}
    launcher._remove_parent_if_unused()
    assert manager.parent_removals == 0  # one still waits for removal
    launcher.unremoved = {}
    launcher._remove_parent_if_unused()
    assert manager.parent_removals == 1
