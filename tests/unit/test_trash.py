"""runtime/trash.py: a removed container's dir leaves its place at once and
is emptied on a thread of its own."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runtime import trash as trash_module
from runtime.trash import Trash


def _made(path: Path) -> Path:
    (path / "execs" / "e").mkdir(parents=True)
    (path / "stdout.log").write_text("out\n")
    return path


def _emptied(trash: Trash, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.listdir(trash.root):
            return True
        time.sleep(0.01)
    return False


def test_a_discarded_dir_is_gone_at_once_and_its_files_soon(tmp_path: Path) -> None:
    trash = Trash(str(tmp_path / "trash"))
    cdir = _made(tmp_path / "c")
    log = open(cdir / "stdout.log")  # noqa: SIM115 - a reader of the removed container's log
    trash.discard(str(cdir))
    assert not cdir.exists()
    assert _emptied(trash)
    assert log.read() == "out\n"  # unlinked, still readable through the open file
    log.close()


def test_an_earlier_processs_leftovers_go_with_the_next_discard(tmp_path: Path) -> None:
    _made(tmp_path / "trash" / "left-by-a-crash")
    trash = Trash(str(tmp_path / "trash"))
    trash.discard(str(_made(tmp_path / "c")))
    assert _emptied(trash)


def test_one_emptier_lingers_then_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trash_module, "LINGER", 0.2)
    trash = Trash(str(tmp_path / "trash"))
    before = threading.active_count()
    for name in "abc":
        trash.discard(str(_made(tmp_path / name)))
    assert threading.active_count() <= before + 1  # one thread for all of them
    assert _emptied(trash)
    deadline = time.monotonic() + 5
    while trash._emptier is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert trash._emptier is None  # ended after its linger
    trash.discard(str(_made(tmp_path / "d")))  # and a new one comes for more
    assert _emptied(trash)


def test_what_cannot_be_moved_is_removed_here_and_a_missing_dir_is_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "trash").write_text("not a directory")
    trash = Trash(str(tmp_path / "trash"))
    cdir = _made(tmp_path / "c")
    trash.discard(str(cdir))
    assert not cdir.exists() and trash._emptier is None
    trash.discard(str(tmp_path / "never-made"))
