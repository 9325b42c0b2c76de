"""runtime/leftovers.py: every cleaner runs with the live ids; one failing stops no other."""

from __future__ import annotations

from runtime import leftovers


def test_cleaners_get_state_dir_and_live_ids_and_failures_are_counted() -> None:
    calls: list[tuple[str, frozenset[str]]] = []

    def broken(state_dir: str, live: frozenset[str]) -> None:
        raise OSError("umount: busy")

    def recording(state_dir: str, live: frozenset[str]) -> None:
        calls.append((state_dir, live))

    assert leftovers.clean("/state", ["a", "b"], [broken, recording]) == 1
    assert calls == [("/state", frozenset({"a", "b"}))]


def test_default_is_the_registry(monkeypatch) -> None:
    seen: list[frozenset[str]] = []
    monkeypatch.setattr(leftovers, "CLEANERS", [lambda _d, live: seen.append(live)])
    assert leftovers.clean("/state", {"x"}) == 0
    assert seen == [frozenset({"x"})]
    assert leftovers.clean("/state", {"x"}, []) == 0  # an explicit empty list runs none
    assert len(seen) == 1
