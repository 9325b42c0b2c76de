"""runtime/records.py: SQLite's failures become the runtime's, and lose nothing."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from runtime import records
from runtime.errors import StorageFull, Unavailable
from runtime.records import ContainerRecord, RecordStore
from runtime.spec import ContainerSpec


def _record(n: int) -> ContainerRecord:
    return ContainerRecord(
        id=f"{n:064x}",
        name=f"c{n}",
        status="created",
        spec=ContainerSpec(command=("x" * 2000,), hostname="h"),
        created_at="2026-01-01T00:00:00Z",
    )


def test_a_lock_held_past_busy_timeout_is_unavailable(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(records, "BUSY_TIMEOUT_MS", 100)
    path = str(tmp_path / "db")
    store = RecordStore(path)
    store.insert(_record(1))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write lock
    try:
        with pytest.raises(Unavailable, match="locked by another process"):
            store.insert(_record(2))
        assert store.get(_record(1).id) is not None  # WAL: reads still work
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.insert(_record(2))  # and writes once it is let go
    assert [r.name for r in store.list()] == ["c2", "c1"]
    store.close()


def test_a_lock_released_within_busy_timeout_just_delays(tmp_path) -> None:
    path = str(tmp_path / "db")
    store = RecordStore(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releaser.start()
    started = time.monotonic()
    store.insert(_record(1))
    assert time.monotonic() - started >= 0.2  # it waited for the lock
    releaser.join()
    other.close()
    assert store.get(_record(1).id) is not None
    store.close()


def test_a_full_database_is_storage_full_and_keeps_what_was_recorded(tmp_path) -> None:
    store = RecordStore(str(tmp_path / "db"))
    store.insert(_record(1))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    # SQLITE_FULL without filling a disk: cap the file at its current size.
    store._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StorageFull, match="state dir is full"):
        for n in range(2, 200):
            store.insert(_record(n))
    assert store.get(_record(1).id) is not None
    store._db.execute("PRAGMA max_page_count=1073741823")
    store.insert(_record(1000))  # usable again once there is room
    store.close()
