"""``python -m app``'s start-up helpers: the benchmark's ballast."""

from __future__ import annotations

import pytest

from app import __main__ as entry


def test_no_ballast_without_the_variable() -> None:
    assert entry.allocate_ballast({}) == 0
    assert entry.allocate_ballast({entry.BALLAST_ENV: " "}) == 0


def test_ballast_is_allocated_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry, "_ballast", b"")
    assert entry.allocate_ballast({entry.BALLAST_ENV: "3"}) == 3
    assert len(entry._ballast) == 3 << 20
    assert entry._ballast[-1] == 1  # written, so resident


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_bad_ballast_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        entry.allocate_ballast({entry.BALLAST_ENV: value})
