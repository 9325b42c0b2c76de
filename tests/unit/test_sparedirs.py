"""runtime/sparedirs.py: container dirs made ahead, renamed into place."""

from __future__ import annotations

import os
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
