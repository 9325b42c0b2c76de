"""runtime.records: the SQLite store of containers."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runtime import records as records_module
from runtime.errors import AmbiguousReference, NameInUse, NotFound
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, ExecRecord, RecordStore
from runtime.spec import ContainerSpec, ExecSpec, Limits, Status, from_dict


def _record(
    container_id: str, name: str | None = None, status: Status = CREATED
) -> ContainerRecord:
    return ContainerRecord(
        id=container_id,
        name=name or container_id,
        status=status,
        spec=ContainerSpec(command=("true",), hostname=container_id[:12]),
        created_at="2026-01-01T00:00:00.000000Z",
    )


def _id(prefix: str) -> str:
    return (prefix + "0" * 64)[:64]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "mydocker.db")


@pytest.fixture
def store(db_path: str) -> Iterator[RecordStore]:
    s = RecordStore(db_path)
    yield s
    s.close()


def test_insert_and_get(store: RecordStore) -> None:
    record = _record(_id("ab"), "web")
    store.insert(record)
    assert store.get(record.id) == record
    assert store.get(_id("cd")) is None


def test_resolve_by_full_id_name_and_unique_prefix(store: RecordStore) -> None:
    a, b = _record(_id("abc1"), "alpha"), _record(_id("abd2"), "beta")
    store.insert(a)
    store.insert(b)
    assert store.resolve(a.id) == a
    assert store.resolve("beta") == b
    assert store.resolve("abc") == a
    assert store.resolve("abd2") == b


def test_resolve_ambiguous_prefix(store: RecordStore) -> None:
    for suffix in "123":
        store.insert(_record(_id("ab" + suffix)))
    with pytest.raises(AmbiguousReference) as info:
        store.resolve("ab")
    assert "3 containers" in str(info.value)
    assert info.value.ref == "ab"


@pytest.mark.parametrize("ref", ["", "ff", "AB", "ab-", "nosuchname", _id("ac")])
def test_resolve_unknown(store: RecordStore, ref: str) -> None:
    store.insert(_record(_id("ab"), "web"))
    with pytest.raises(NotFound) as info:
        store.resolve(ref)
    assert info.value.ref == ref


def test_a_name_wins_over_a_prefix_and_an_id_over_a_name(store: RecordStore) -> None:
    # "abc" is both a name and a prefix of another container's id.
    named = _record(_id("ff"), "abc")
    other = _record(_id("abc"), "other")
    store.insert(named)
    store.insert(other)
    assert store.resolve("abc") == named
    # A container named like another's full id: the id wins.
    store.insert(_record(_id("ee"), other.id))
    assert store.resolve(other.id) == other


def test_name_clash(store: RecordStore) -> None:
    store.insert(_record(_id("a1"), "web"))
    with pytest.raises(NameInUse) as info:
        store.insert(_record(_id("b2"), "web"))
    assert info.value.name == "web"
    assert "'web'" in str(info.value)
    assert [r.id for r in store.list()] == [_id("a1")]
    # The failed insert did not use up a place in the order.
    store.insert(_record(_id("c3"), "db"))
    assert [r.name for r in store.list()] == ["db", "web"]


def test_list_newest_first_with_filters(store: RecordStore) -> None:
    for i, status in enumerate([EXITED, RUNNING, EXITED, CREATED]):
        store.insert(_record(_id(f"{i}a"), f"c{i}", status))
    assert [r.name for r in store.list()] == ["c3", "c2", "c1", "c0"]
    assert [r.name for r in store.list(status=EXITED)] == ["c2", "c0"]
    assert [r.name for r in store.list(name="c1")] == ["c1"]
    assert store.list(status=EXITED, name="c1") == []
    assert [r.name for r in store.list(limit=2)] == ["c3", "c2"]


def test_order_is_insertion_not_id_or_time(store: RecordStore) -> None:
    # Same created_at, ids in reverse order: the order is still newest first.
    for prefix in ["f", "e", "d"]:
        store.insert(_record(_id(prefix)))
    assert [r.id[0] for r in store.list()] == ["d", "e", "f"]


def test_update_returns_the_new_record_and_merges_results(store: RecordStore) -> None:
    record = _record(_id("ab"))
    store.insert(record)
    updated = store.update(record.id, status=RUNNING, pid=42, results={"a": 1})
    assert (updated.status, updated.pid, dict(updated.results)) == (RUNNING, 42, {"a": 1})
    updated = store.update(record.id, results={"b": {"x": 2}})
    assert dict(updated.results) == {"a": 1, "b": {"x": 2}}
    updated = store.update(record.id, results={"a": 3}, status=EXITED, exit_code=0)
    assert dict(updated.results) == {"a": 3, "b": {"x": 2}}
    assert store.get(record.id) == updated
    assert updated.spec == record.spec


def test_update_of_an_unknown_id(store: RecordStore) -> None:
    with pytest.raises(NotFound):
        store.update(_id("ab"), status=EXITED)


def test_amend_changes_what_the_record_as_it_is_says(store: RecordStore) -> None:
    record = _record(_id("ab"))
    store.insert(record)
    store.update(record.id, error="lost", results={"a": 1})
    seen = []

    def change(current: ContainerRecord) -> dict[str, object]:
        seen.append(current)
        cleared = {"error": None} if current.error else {}
        return {"status": EXITED, "results": {"b": 2}, **cleared}

    amended = store.amend(record.id, change)
    assert amended is not None and [r.error for r in seen] == ["lost"]
    assert (amended.status, amended.error) == (EXITED, None)
    assert dict(amended.results) == {"a": 1, "b": 2}
    assert store.get(record.id) == amended
    # No record: nothing changed, no exception (an exit of a removed container).
    assert store.amend(_id("cd"), change) is None
    assert len(seen) == 1


def test_delete(store: RecordStore) -> None:
    store.insert(_record(_id("ab"), "web"))
    store.delete(_id("ab"))
    assert store.get(_id("ab")) is None
    with pytest.raises(NotFound):
        store.resolve("web")
    store.insert(_record(_id("cd"), "web"))  # the name is free again


def test_records_and_order_survive_reopening(db_path: str) -> None:
    first = RecordStore(db_path)
    first.insert(_record(_id("aa"), "old"))
    first.update(_id("aa"), status=EXITED, exit_code=3, signal=None, results={"k": "v"})
    first.close()
    second = RecordStore(db_path)
    try:
        second.insert(_record(_id("bb"), "new"))
        assert [r.name for r in second.list()] == ["new", "old"]
        old = second.resolve("old")
        assert (old.status, old.exit_code, dict(old.results)) == (EXITED, 3, {"k": "v"})
    finally:
        second.close()


def test_concurrent_inserts_and_updates(store: RecordStore) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                cid = _id(f"{n:x}{i:02x}")
                store.insert(_record(cid))
                store.update(cid, status=EXITED, exit_code=i)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = store.list()
    assert len(records) == 200
    assert all(r.status == EXITED for r in records)


# -- execs ------------------------------------------------------------------------
def _exec(exec_id: str, container_id: str) -> ExecRecord:
    return ExecRecord(
        id=exec_id,
        container_id=container_id,
        status=CREATED,
        spec=ExecSpec(command=("hostname",), tty=False),
        created_at="2026-01-01T00:00:00Z",
    )


def test_execs_are_stored_resolved_and_go_with_their_container(store: RecordStore) -> None:
    container = _id("c1")
    store.insert(_record(container))
    store.insert_exec(_exec(_id("e1"), container))
    store.insert_exec(_exec(_id("e2"), container))
    done = store.update_exec(_id("e1"), status=EXITED, exit_code=7)
    assert (done.status, done.exit_code, done.spec.command) == (EXITED, 7, ("hostname",))
    assert store.get_exec(_id("e1")) == done
    assert store.resolve_exec(_id("e2")[:6]).id == _id("e2")
    with pytest.raises(AmbiguousReference):
        store.resolve_exec("e")
    with pytest.raises(NotFound, match="no such exec"):
        store.resolve_exec("f00")
    assert [e.id for e in store.list_execs(container_id=container)] == [_id("e1"), _id("e2")]
    assert [e.id for e in store.list_execs(status=CREATED)] == [_id("e2")]
    store.delete(container)
    assert store.list_execs() == []
    with pytest.raises(NotFound):
        store.update_exec(_id("e2"), status=EXITED)


def test_rows_written_as_plain_dicts_load_as_typed_specs(tmp_path) -> None:
    """A row from before a spec field existed (no image, limits, tty) loads
    with the field's default; the status comes back as a ``Status``."""
    store = RecordStore(str(tmp_path / "db"))
    store._db.execute(
        "INSERT INTO containers (id, name, status, spec, created_at, seq) "
        "VALUES (?, ?, 'exited', ?, 't', 1)",
        (_id("old"), "old", json.dumps({"command": ["true"], "hostname": "h", "env": {}})),
    )
    old = store.get(_id("old"))
    assert old is not None
    assert (old.status, old.spec.command, old.spec.image) == (Status.exited, ("true",), "host")
    assert old.spec.limits == Limits() and old.spec.tty is False


def test_an_update_writes_only_what_it_changes(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record(_id("a"), "enc")
    store.insert(record)
    encoded: list[object] = []
    real = records_module.to_dict  # type: ignore[attr-defined]

    def counted(obj: object) -> dict[str, object]:
        encoded.append(obj)
        return real(obj)

    monkeypatch.setattr(records_module, "to_dict", counted)
    updated = store.update(record.id, status=RUNNING, pid=7, results={"k": 1})
    assert encoded == []  # the spec is not encoded again for a status change
    assert store.get(record.id) == updated
    assert (updated.status, updated.pid, updated.results, updated.spec) == (
        RUNNING,
        7,
        {"k": 1},
        record.spec,
    )
    changed = replace(record.spec, hostname="other")
    assert store.update(record.id, spec=changed).spec == changed
    assert store.get(record.id).spec == changed  # type: ignore[union-attr]


def test_a_stored_spec_is_decoded_once_and_shared(store: RecordStore) -> None:
    record = _record(_id("b"), "shared")
    store.insert(record)
    first, second = store.get(record.id), store.resolve("shared")
    assert first is not None and first.spec == record.spec
    assert second.spec is first.spec  # frozen: one decoded instance serves every read


def test_the_insert_remembers_its_spec_so_no_read_decodes_it(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[object] = []
    real = from_dict

    def counting(cls: type, data: dict[str, object]) -> object:
        decoded.append(cls)
        return real(cls, data)

    monkeypatch.setattr(records_module, "from_dict", counting)
    record = _record(_id("c"), "seeded")
    store.insert(record)
    running = store.update(record.id, status=RUNNING)
    assert running.spec is record.spec and store.get(record.id).spec is record.spec  # type: ignore[union-attr]
    assert decoded == []
    # A text the cache no longer holds (another process wrote it, a restart)
    # is decoded, to an equal spec.
    records_module._SPECS.clear()
    restarted = RecordStore(store.path)
    try:
        again = restarted.get(record.id)
    finally:
        restarted.close()
    assert again is not None and again.spec == record.spec and again.spec is not record.spec
    assert len(decoded) == 1


def test_an_update_and_a_get_start_from_the_record_as_written_not_a_read(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record(_id("w"), "written")
    store.insert(record)
    reads: list[str] = []
    real = RecordStore._get_by_id

    def counting(db: sqlite3.Connection, container_id: str) -> ContainerRecord | None:
        reads.append(container_id)
        return real(db, container_id)

    monkeypatch.setattr(RecordStore, "_get_by_id", staticmethod(counting))
    running = store.update(record.id, status=RUNNING, pid=42)
    assert store.get(record.id) == running
    exited = store.update(record.id, status=EXITED, exit_code=3)
    assert reads == []
    # What they return is what the file holds.
    restarted = RecordStore(store.path)
    try:
        assert restarted.get(record.id) == exited
    finally:
        restarted.close()
    assert reads == [record.id]


def test_an_update_in_another_thread_starts_from_the_one_just_committed(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between one update's commit and its record remembered, another's must
    not start from the record remembered before (it would write its results
    merged into a stale copy, and lose the first one's)."""
    record = _record(_id("race"), "race")
    store.insert(record)
    remember = store._remember
    committed, second_done = threading.Event(), threading.Event()

    def slow_remember(written: ContainerRecord) -> None:
        if "first" in written.results and not committed.is_set():
            committed.set()
            second_done.wait(0.5)  # the second update would run here, if it could
        remember(written)

    monkeypatch.setattr(store, "_remember", slow_remember)
    first = threading.Thread(
        target=store.update, args=(record.id,), kwargs={"results": {"first": 1}}
    )
    first.start()
    assert committed.wait(5)
    store.update(record.id, results={"second": 2})
    second_done.set()
    first.join()
    assert store.get(record.id).results == {"first": 1, "second": 2}  # type: ignore[union-attr]
    restarted = RecordStore(store.path)
    try:
        assert restarted.get(record.id).results == {"first": 1, "second": 2}  # type: ignore[union-attr]
    finally:
        restarted.close()


def test_a_failed_update_leaves_the_record_as_written(store: RecordStore) -> None:
    first, second = _record(_id("a"), "first"), _record(_id("b"), "second")
    store.insert(first)
    store.insert(second)
    with pytest.raises(NameInUse):
        store.update(second.id, name="first")  # rolled back
    assert store.get(second.id) == second
    restarted = RecordStore(store.path)
    try:
        assert restarted.get(second.id) == second
    finally:
        restarted.close()


def test_a_deleted_record_is_gone_from_what_was_written(store: RecordStore) -> None:
    record = _record(_id("d"), "deleted")
    store.insert(record)
    store.update(record.id, status=RUNNING)
    store.delete(record.id)
    assert store.get(record.id) is None
    assert store.amend(record.id, lambda current: {"status": EXITED}) is None


def test_what_was_written_is_bounded(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records_module, "WRITTEN_KEPT", 2)
    ids = [_id(str(n)) for n in range(4)]
    for n, container_id in enumerate(ids):
        store.insert(_record(container_id, f"k{n}"))
    assert list(store._written) == ids[2:]
    assert store.get(ids[0]) is not None and store.get(ids[0]).name == "k0"  # type: ignore[union-attr]


def test_the_spec_cache_is_bounded(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records_module, "SPEC_CACHE_SIZE", 2)
    for n in range(4):
        store.insert(_record(_id(str(n)), f"n{n}"))
    assert len(records_module._SPECS) == 2


def test_a_store_from_before_the_ipam_column_gets_it(db_path: str) -> None:
    import sqlite3

    old = sqlite3.connect(db_path)
    old.execute(
        "CREATE TABLE networks (name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "subnet TEXT NOT NULL, gateway TEXT NOT NULL, bridge TEXT NOT NULL, "
        "internal INTEGER NOT NULL, created_at TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '{}')"
    )
    old.execute(
        "INSERT INTO networks VALUES ('a', 'i1', '10.1.0.0/24', '10.1.0.1', 'mdk-1', 0, 't', '{}')"
    )
    old.commit()
    old.close()
    store = RecordStore(db_path)
    try:
        [kept] = store.networks()
        assert (kept.name, kept.ip_range, dict(kept.aux_addresses)) == ("a", "", {})
        made = records_module.NetworkRecord(
            "b",
            "i2",
            "10.2.0.0/24",
            "10.2.0.1",
            "mdk-2",
            False,
            "t",
            {},
            "10.2.0.128/25",
            {"r": "10.2.0.9"},
        )
        store.insert_network(made)
        assert store.networks()[1] == made
    finally:
        store.close()


def test_networks_are_read_once_until_one_is_added_or_removed(tmp_path) -> None:
    from runtime.records import NetworkRecord

    store = RecordStore(str(tmp_path / "db"))
    reads = 0
    real = store._read_networks

    def counted() -> list[NetworkRecord]:
        nonlocal reads
        reads += 1
        return real()

    store._read_networks = counted  # type: ignore[method-assign]
    assert store.networks() == [] and store.networks() == [] and reads == 1
    net = NetworkRecord("a", "1" * 64, "10.9.0.0/24", "10.9.0.1", "mdk-a", False, "now")
    store.insert_network(net)
    assert [n.name for n in store.networks()] == ["a"] and reads == 2
    store.networks().clear()  # a caller's list is its own
    assert [n.name for n in store.networks()] == ["a"] and reads == 2
    with pytest.raises(NameInUse):
        store.insert_network(net)
    assert [n.name for n in store.networks()] == ["a"]
    store.delete_network("a")
    assert store.networks() == [] and reads == 4
