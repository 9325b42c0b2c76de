"""Container records in SQLite: one connection, one writer, WAL.

The store is the service's memory across restarts: a record is written when
a container is created and updated when it starts and ends; nothing is ever
deleted except by an explicit remove.  All access goes through one
connection guarded by a lock, so the API's worker threads and the launcher
client's reader thread never interleave a transaction.

SQLite's failures become the runtime's (``_sqlite_errors``): a database
another process keeps locked past ``busy_timeout`` is ``Unavailable`` (503),
a full disk is ``StorageFull`` (507); a failed transaction is rolled back
whole, so what was recorded before stays as it was.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.errors import (
    AmbiguousReference,
    NameInUse,
    NotFound,
    RuntimeFailure,
    StorageFull,
    Unavailable,
)
from runtime.spec import ContainerSpec, ExecSpec, Status, from_dict, to_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    pid INTEGER,
    pid_start_time INTEGER,
    exit_code INTEGER,
    signal TEXT,
    error TEXT,
    results TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_status ON containers (status);
CREATE INDEX IF NOT EXISTS containers_seq ON containers (seq);
CREATE TABLE IF NOT EXISTS execs (
    id TEXT PRIMARY KEY,
    container_id TEXT NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    pid INTEGER,
    exit_code INTEGER,
    signal TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS execs_container ON execs (container_id);
CREATE INDEX IF NOT EXISTS execs_status ON execs (status);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    bridge TEXT NOT NULL,
    internal INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    ipam TEXT NOT NULL DEFAULT '{}'
);
"""

#: The statuses by their old names (``Status`` is the type).
CREATED, RUNNING, EXITED = Status.created, Status.running, Status.exited

#: How long a statement waits for another process's lock before giving up
#: (PRAGMA busy_timeout): a backup or an sqlite3 shell holding the database
#: for a few seconds delays requests instead of failing them.
BUSY_TIMEOUT_MS = 10_000


@contextmanager
def _sqlite_errors(path: str) -> Iterator[None]:
    """Map sqlite3's exceptions to the runtime's (sqlite.org/rescode.html)."""
    try:
        yield
    except sqlite3.OperationalError as err:
        code = getattr(err, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise Unavailable(
                f"the record store {path} stayed locked by another process for "
                f"{BUSY_TIMEOUT_MS // 1000} s; try again"
            ) from err
        if code == sqlite3.SQLITE_FULL:
            raise StorageFull(path, str(err)) from err
        raise RuntimeFailure(f"record store {path}: {err}") from err


@dataclass(frozen=True)
class ContainerRecord:
    """A container as recorded: its ``spec`` as it was launched (stored as
    JSON, ``spec.to_dict``); ``results`` holds what later features measure
    about a run."""

    id: str
    name: str
    status: Status
    spec: ContainerSpec
    created_at: str
    pid: int | None = None
    pid_start_time: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    results: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "running" -> Status.running


@dataclass(frozen=True)
class ExecRecord:
    """A process started in a running container (``docker exec``)."""

    id: str
    container_id: str
    status: Status
    spec: ExecSpec
    created_at: str
    pid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))


@dataclass(frozen=True)
class NetworkRecord:
    """A bridge network (the built-in ``bridge`` or a user's): its subnet,
    the gateway its bridge holds, the bridge's name; ``ip_range`` (the part
    of the subnet containers get addresses from, all of it when empty) and
    ``aux_addresses`` (name -> address, never handed out) are Docker's
    IPAM ``IPRange`` and ``AuxiliaryAddresses``."""

    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool
    created_at: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip_range: str = ""
    aux_addresses: Mapping[str, str] = field(default_factory=dict)


_NETWORK_COLUMNS = "name id subnet gateway bridge internal created_at labels".split()
#: Columns added after the first release: (table, column, declaration) for ALTER TABLE.
_ADDED_COLUMNS = (("networks", "ipam", "TEXT NOT NULL DEFAULT '{}'"),)


_EXEC_COLUMNS = (
    "id container_id status spec pid exit_code signal error created_at started_at finished_at"
).split()


def _to_exec(row: sqlite3.Row) -> ExecRecord:
    values = dict(zip(_EXEC_COLUMNS, row, strict=True))
    values["spec"] = from_dict(ExecSpec, json.loads(values["spec"]))
    return ExecRecord(**values)


_COLUMNS = (
    "id name status spec pid pid_start_time exit_code signal error results "
    "created_at started_at finished_at"
).split()


#: Decoded specs by their stored text, most recently used last (``_container_spec``).
_SPECS: OrderedDict[str, ContainerSpec] = OrderedDict()
_SPECS_LOCK = threading.Lock()
SPEC_CACHE_SIZE = 1024
#: Records kept as last written (``RecordStore._written``).
WRITTEN_KEPT = 1024


def _container_spec(text: str) -> ContainerSpec:
    """A stored spec decoded once: a launch reads its record five or six
    times (running, settle, the exit's waiters and record, the follower),
    and ``from_dict`` over the spec's nested dataclasses cost more of the
    API's CPU than all of SQLite.  The spec is frozen and never changes
    after the insert, so equal text is an equal spec to share; the insert
    remembers the spec it encoded (``_encode_spec``), so that even the
    first read decodes nothing."""
    with _SPECS_LOCK:
        spec = _SPECS.get(text)
        if spec is not None:
            _SPECS.move_to_end(text)
            return spec
    # Rows written before a spec field existed load with its default
    # (``from_dict`` takes the keys it finds).
    spec = from_dict(ContainerSpec, json.loads(text))
    _remember_spec(text, spec)
    return spec


def _encode_spec(spec: ContainerSpec, plain: dict[str, Any] | None = None) -> str:
    """The spec's stored text (``plain``: its ``to_dict``, when the caller
    has it already); the spec is remembered as its decoding
    (``from_dict(to_dict(spec)) == spec``, tests/unit/test_records.py)."""
    text = json.dumps(to_dict(spec) if plain is None else plain)
    _remember_spec(text, spec)
    return text


def _remember_spec(text: str, spec: ContainerSpec) -> None:
    with _SPECS_LOCK:
        _SPECS[text] = spec
        _SPECS.move_to_end(text)
        while len(_SPECS) > SPEC_CACHE_SIZE:
            _SPECS.popitem(last=False)


def _to_record(row: sqlite3.Row) -> ContainerRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["spec"] = _container_spec(values["spec"])
    values["results"] = json.loads(values["results"])
    return ContainerRecord(**values)


class RecordStore:
    def __init__(self, path: str) -> None:
        self.path = path
        #: Called with each write's seconds, lock wait included (a Meter's
        #: ``record_written``); must not block.
        self.on_write: Callable[[float], None] | None = None
        self._lock = threading.RLock()
        #: ``networks()``'s answer until a network is inserted or deleted:
        #: this store is the only writer (one service per state dir), and a
        #: bridge launch asked for it five or six times.
        self._networks: tuple[NetworkRecord, ...] | None = None
        #: The containers' records as last written here, by id, most recent
        #: last: an update (``amend``) or a ``get`` starts from the record,
        #: not from a SELECT and its row's decoding (both 0.07 ms a launch
        #: under load, twice: running, exited); the same "only writer".
        self._written: OrderedDict[str, ContainerRecord] = OrderedDict()
        # isolation_level=None: we open transactions ourselves, explicitly.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with _sqlite_errors(path):
            # Set first, so that the statements below wait for a lock too.
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process; only a
            # power loss may drop the last transactions (sqlite.org/wal.html).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._add_columns()
            self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM containers").fetchone()[
                0
            ]

    def _add_columns(self) -> None:
        """Columns newer than a store's file (CREATE TABLE IF NOT EXISTS
        leaves an old table as it was)."""
        for table, column, declaration in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        started = time.perf_counter()
        with self._lock, _sqlite_errors(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back on its own (SQLITE_FULL does).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        if self.on_write is not None:
            self.on_write(time.perf_counter() - started)

    def insert(self, record: ContainerRecord, spec: dict[str, Any] | None = None) -> None:
        """``spec``: ``to_dict(record.spec)`` when the caller has it already."""
        # The lock (reentrant) spans the commit and ``_remember``: another
        # thread's amend in between would start from what was last remembered.
        with self._lock:
            with self._transaction() as db:
                self._seq += 1
                try:
                    db.execute(
                        f"INSERT INTO containers ({', '.join(_COLUMNS)}, seq) "
                        f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
                        [*self._row(record, spec=spec or True), self._seq],
                    )
                except sqlite3.IntegrityError as err:
                    self._seq -= 1
                    raise NameInUse(record.name) from err
            self._remember(record)

    def _remember(self, record: ContainerRecord) -> None:
        """``record`` as just committed (``_written``; the lock held since
        before the commit)."""
        self._written[record.id] = record
        self._written.move_to_end(record.id)
        while len(self._written) > WRITTEN_KEPT:
            self._written.popitem(last=False)

    def _current(self, db: sqlite3.Connection, container_id: str) -> ContainerRecord | None:
        """The record as it is (the lock held): as last written, or read."""
        found = self._written.get(container_id)
        return found if found is not None else self._get_by_id(db, container_id)

    @staticmethod
    def _row(record: ContainerRecord, spec: bool | dict[str, Any] = True) -> list[Any]:
        """The record's column values; ``spec=False`` leaves the spec unencoded,
        a dict is its ``to_dict`` already made."""
        values = [getattr(record, c) for c in _COLUMNS]
        if spec:
            plain = None if spec is True else spec
            values[_COLUMNS.index("spec")] = _encode_spec(record.spec, plain)
        values[_COLUMNS.index("results")] = json.dumps(record.results)
        return values

    def update(self, container_id: str, **changes: Any) -> ContainerRecord:
        """Change some fields of a record and return the record as it is now."""
        updated = self.amend(container_id, lambda current: changes)
        if updated is None:
            raise NotFound("container", container_id)
        return updated

    def amend(
        self, container_id: str, changes_of: Callable[[ContainerRecord], dict[str, Any]]
    ) -> ContainerRecord | None:
        """``update`` with the changes ``changes_of`` makes of the record as
        it is, read once in the same transaction (an exit: its results
        merged, a lost-status error cleared); None when there is no record."""
        # The lock spans the commit and ``_remember`` (as in ``insert``).
        with self._lock:
            with self._transaction() as db:
                current = self._current(db, container_id)
                if current is None:
                    return None
                changes = dict(changes_of(current))
                if "results" in changes:
                    changes["results"] = {**current.results, **changes["results"]}
                updated = replace(current, **changes)
                # Only the changed columns: the spec is not encoded again.
                row = dict(zip(_COLUMNS, self._row(updated, spec="spec" in changes), strict=True))
                columns = [c for c in _COLUMNS[1:] if c in changes]
                if columns:
                    assignments = ", ".join(f"{c} = ?" for c in columns)
                    try:
                        db.execute(
                            f"UPDATE containers SET {assignments} WHERE id = ?",
                            [*(row[c] for c in columns), container_id],
                        )
                    except sqlite3.IntegrityError as err:  # a rename onto a name in use
                        raise NameInUse(updated.name) from err
            self._remember(updated)  # committed
            return updated

    def delete(self, container_id: str) -> None:
        """Forget a container and its execs."""
        with self._lock:
            self._written.pop(container_id, None)
            with self._transaction() as db:
                db.execute("DELETE FROM containers WHERE id = ?", (container_id,))
                db.execute("DELETE FROM execs WHERE container_id = ?", (container_id,))

    # -- execs ----------------------------------------------------------
    def insert_exec(self, record: ExecRecord) -> None:
        values = [getattr(record, c) for c in _EXEC_COLUMNS]
        values[_EXEC_COLUMNS.index("spec")] = json.dumps(to_dict(record.spec))
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO execs ({', '.join(_EXEC_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_EXEC_COLUMNS))})",
                values,
            )

    def update_exec(self, exec_id: str, **changes: Any) -> ExecRecord:
        with self._transaction() as db:
            current = self._get_exec(db, exec_id)
            if current is None:
                raise NotFound("exec", exec_id)
            updated = replace(current, **changes)
            assignments = ", ".join(f"{c} = ?" for c in changes)
            values = [json.dumps(to_dict(v)) if k == "spec" else v for k, v in changes.items()]
            db.execute(f"UPDATE execs SET {assignments} WHERE id = ?", [*values, exec_id])
            return updated

    def delete_exec(self, exec_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM execs WHERE id = ?", (exec_id,))

    @staticmethod
    def _get_exec(db: sqlite3.Connection, exec_id: str) -> ExecRecord | None:
        row = db.execute(
            f"SELECT {', '.join(_EXEC_COLUMNS)} FROM execs WHERE id = ?", (exec_id,)
        ).fetchone()
        return None if row is None else _to_exec(row)

    def get_exec(self, exec_id: str) -> ExecRecord | None:
        with self._lock, _sqlite_errors(self.path):
            return self._get_exec(self._db, exec_id)

    def resolve_exec(self, ref: str) -> ExecRecord:
        """An exec by full id or unique id prefix."""
        with self._lock, _sqlite_errors(self.path):
            found = self._get_exec(self._db, ref)
            if found is not None:
                return found
            if ref and all(c in "0123456789abcdef" for c in ref):
                rows = self._db.execute(
                    f"SELECT {', '.join(_EXEC_COLUMNS)} FROM execs WHERE id >= ? AND id < ? "
                    "LIMIT 2",
                    (ref, ref + "g"),
                ).fetchall()
                if len(rows) == 1:
                    return _to_exec(rows[0])
                if len(rows) > 1:
                    raise AmbiguousReference(ref, 2)
        raise NotFound("exec", ref)

    def list_execs(
        self, container_id: str | None = None, status: str | None = None
    ) -> list[ExecRecord]:
        """Oldest first."""
        where, params = [], []
        if container_id is not None:
            where.append("container_id = ?")
            params.append(container_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {', '.join(_EXEC_COLUMNS)} FROM execs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid"
        with self._lock, _sqlite_errors(self.path):
            return [_to_exec(r) for r in self._db.execute(sql, params).fetchall()]

    @staticmethod
    def _get_by_id(db: sqlite3.Connection, container_id: str) -> ContainerRecord | None:
        row = db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM containers WHERE id = ?", (container_id,)
        ).fetchone()
        return None if row is None else _to_record(row)

    def get(self, container_id: str) -> ContainerRecord | None:
        with self._lock, _sqlite_errors(self.path):
            return self._current(self._db, container_id)

    def resolve(self, ref: str) -> ContainerRecord:
        """The container a user means by ``ref``: full id, name, or unique id prefix."""
        with self._lock, _sqlite_errors(self.path):
            select = f"SELECT {', '.join(_COLUMNS)} FROM containers"
            row = self._db.execute(f"{select} WHERE id = ?", (ref,)).fetchone()
            if row is None:
                row = self._db.execute(f"{select} WHERE name = ?", (ref,)).fetchone()
            if row is not None:
                return _to_record(row)
            if ref and all(c in "0123456789abcdef" for c in ref):
                rows = self._db.execute(
                    f"{select} WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")
                ).fetchall()
                if len(rows) == 1:
                    return _to_record(rows[0])
                if len(rows) > 1:
                    count = self._db.execute(
                        "SELECT COUNT(*) FROM containers WHERE id >= ? AND id < ?",
                        (ref, ref + "g"),
                    ).fetchone()[0]
                    raise AmbiguousReference(ref, count)
        raise NotFound("container", ref)

    def list(
        self, status: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[ContainerRecord]:
        """Newest first."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM containers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock, _sqlite_errors(self.path):
            return [_to_record(r) for r in self._db.execute(sql, params).fetchall()]

    def count(self, status: str) -> int:
        """How many containers have ``status``: an index count, no row decoded
        (a metrics scrape asks it)."""
        with self._lock, _sqlite_errors(self.path):
            row = self._db.execute(
                "SELECT COUNT(*) FROM containers WHERE status = ?", (status,)
            ).fetchone()
        return int(row[0])

    # -- networks -------------------------------------------------------
    def insert_network(self, record: NetworkRecord) -> None:
        values = [getattr(record, c) for c in _NETWORK_COLUMNS]
        values[-1] = json.dumps(dict(record.labels))
        ipam = {"ip_range": record.ip_range, "aux_addresses": dict(record.aux_addresses)}
        with self._transaction() as db:
            try:
                db.execute(
                    f"INSERT INTO networks ({', '.join(_NETWORK_COLUMNS)}, ipam) "
                    f"VALUES ({', '.join('?' * (len(_NETWORK_COLUMNS) + 1))})",
                    [*values, json.dumps(ipam)],
                )
            except sqlite3.IntegrityError as err:
                raise NameInUse(record.name, "network") from err
            finally:
                self._networks = None  # in the transaction's lock: no reader between

    def networks(self) -> builtins.list[NetworkRecord]:
        """Oldest first."""
        with self._lock:
            if self._networks is None:
                self._networks = tuple(self._read_networks())
            return list(self._networks)

    def _read_networks(self) -> builtins.list[NetworkRecord]:
        sql = f"SELECT {', '.join(_NETWORK_COLUMNS)}, ipam FROM networks ORDER BY rowid"
        with self._lock, _sqlite_errors(self.path):
            rows = self._db.execute(sql).fetchall()
        return [
            NetworkRecord(
                **{
                    **dict(zip(_NETWORK_COLUMNS, r[:-1], strict=True)),
                    "internal": bool(r[5]),
                    "labels": json.loads(r[7]),
                    **json.loads(r[-1]),
                }
            )
            for r in rows
        ]

    def delete_network(self, name: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM networks WHERE name = ?", (name,))
            self._networks = None
