"""runtime/sparedirs.py: container dirs made ahead, renamed into place."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from runtime.sparedirs import SpareDirs


def _spares(tmp_path: Path, stock: int = 2) -> SpareDirs:
    (tmp_path / "containers").mkdir()
    return SpareDirs(str(tmp_path / "spares"), stock=stock)


def test_none_ready_means_the_caller_makes_the_dir(tmp_path: Path) -> None:
    spares = _spares(tmp_path)
    assert spares.take(str(tmp_path / "containers" / "a")) is False
    assert not (tmp_path / "containers" / "a").exists()


def test_a_spare_becomes_the_containers_dir_with_its_empty_logs(tmp_path: Path) -> None:
    spares = _spares(tmp_path)
    spares.make_one()
    spares.make_one()
    spares.make_one()  # the stock is full: no third
    assert len(os.listdir(tmp_path / "spares")) == 2
    cdir = tmp_path / "containers" / "a"
    assert spares.take(str(cdir)) is True
    assert sorted(os.listdir(cdir)) == ["stderr.log", "stdout.log"]
    assert all((cdir / name).stat().st_size == 0 for name in os.listdir(cdir))
    assert (cdir / "stdout.log").stat().st_mode & 0o777 == 0o640
    assert cdir.stat().st_mode & 0o777 == 0o700
    assert len(os.listdir(tmp_path / "spares")) == 1  # gone from the stock at once
    assert spares.take(str(tmp_path / "containers" / "b")) is True
    assert spares.take(str(tmp_path / "containers" / "c")) is False


def test_an_earlier_processs_spares_are_used(tmp_path: Path) -> None:
    """They hold only empty files, a half-made one included (the launcher's
    O_CREAT makes a missing log)."""
    _spares(tmp_path).make_one()
    (tmp_path / "spares" / "half").mkdir()
    again = SpareDirs(str(tmp_path / "spares"))
    assert again.take(str(tmp_path / "containers" / "a"))
    assert again.take(str(tmp_path / "containers" / "b"))
    assert not again.take(str(tmp_path / "containers" / "c"))


def test_a_spare_that_cannot_be_moved_is_no_dir(tmp_path: Path) -> None:
    spares = _spares(tmp_path)
    spares.make_one()
    (tmp_path / "containers" / "a").mkdir()
    (tmp_path / "containers" / "a" / "x").touch()  # rename(2): ENOTEMPTY
    assert spares.take(str(tmp_path / "containers" / "a")) is False


def test_a_failed_make_leaves_the_stock_as_it_was(tmp_path: Path) -> None:
    spares = _spares(tmp_path)
    (tmp_path / "spares").write_text("not a directory")
    spares.make_one()  # logged, not raised
    assert spares.take(str(tmp_path / "containers" / "a")) is False


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_create_with_spares_left_refills_the_stock_once_creates_pause(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    spares = SpareDirs(str(tmp_path / "spares"), stock=4, quiet=0.3)
    for _ in range(3):
        spares.make_one()
    assert spares.take(str(tmp_path / "containers" / "a"))
    started = time.monotonic()
    spares.after_create()  # two left: above LOW, nothing made during the launch
    assert len(os.listdir(tmp_path / "spares")) == 2
    time.sleep(0.15)
    spares.after_create()  # another create: the pause starts again
    assert _until(lambda: len(os.listdir(tmp_path / "spares")) == 4)
    assert time.monotonic() - started >= 0.45  # 0.15 + the whole pause after the second
    spares.make_one()
    assert len(os.listdir(tmp_path / "spares")) == 4  # full: no fifth


def test_a_create_that_leaves_the_stock_low_makes_one_at_once(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    spares = SpareDirs(str(tmp_path / "spares"), stock=4, quiet=60)
    spares.after_create()  # none at all: made now, as a burst of creates needs
    assert len(os.listdir(tmp_path / "spares")) == 1
    spares.after_create()  # one (LOW): made now
    assert len(os.listdir(tmp_path / "spares")) == 2
    spares.after_create()  # two: at the next pause, a minute away
    assert len(os.listdir(tmp_path / "spares")) == 2


def test_a_low_stock_is_also_refilled_at_the_pause(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    spares = SpareDirs(str(tmp_path / "spares"), stock=3, quiet=0.05)
    spares.after_create()  # none: one made now, the rest at the pause
    assert len(os.listdir(tmp_path / "spares")) >= 1
    assert _until(lambda: len(os.listdir(tmp_path / "spares")) == 3)


def test_close_ends_the_filler_and_later_creates_start_none(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    spares = SpareDirs(str(tmp_path / "spares"), stock=3, quiet=60)
    spares.after_create()
    filler = spares._filler
    assert filler is not None and filler.is_alive()
    spares.close()
    assert not filler.is_alive()
    spares.after_create()  # after close: no thread again (the stock is made at once if low)
    assert spares._filler is filler and not filler.is_alive()
