"""runtime.logindex: the launcher's time records and their reading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime import logindex
from runtime.logindex import RECORD, IndexReader, IndexWriter, index_path


def grow(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_the_index_sits_next_to_its_log() -> None:
    assert index_path("/s/c/stdout.log") == "/s/c/stdout.idx"
    assert index_path("/s/c/output") == "/s/c/output.idx"


def test_the_writer_records_only_growth(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"")
    writer = IndexWriter(str(log))
    assert writer.note(1) is False  # empty: nothing to date, no file made
    assert not (tmp_path / "stdout.idx").exists()
    grow(log, b"a\n")
    assert writer.note(100) is True
    assert writer.note(200) is False  # unchanged
    grow(log, b"bb\n")
    assert writer.note(300) is True
    writer.close()
    data = (tmp_path / "stdout.idx").read_bytes()
    assert list(RECORD.iter_unpack(data)) == [(2, 100), (5, 300)]


def test_the_writer_tolerates_a_missing_log(tmp_path: Path) -> None:
    assert IndexWriter(str(tmp_path / "gone.log")).note(1) is False


def test_a_failed_write_stops_the_writer(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"x")
    (tmp_path / "stdout.idx").mkdir()  # cannot be opened for writing
    writer = IndexWriter(str(log))
    with pytest.raises(OSError):
        writer.note(1)
    assert writer.broken and writer.note(2) is False


def write_index(tmp_path: Path, records: list[tuple[int, int]]) -> str:
    log = tmp_path / "stdout.log"
    (tmp_path / "stdout.idx").write_bytes(b"".join(RECORD.pack(*r) for r in records))
    return str(log)


def test_a_byte_has_the_time_of_the_first_record_past_it(tmp_path: Path) -> None:
    reader = IndexReader(write_index(tmp_path, [(2, 100), (5, 300), (9, 400)]))
    times = [reader.time_at(offset) for offset in range(10)]
    assert times == [100] * 2 + [300] * 3 + [400] * 4 + [None]
    # Going back searches again.
    assert reader.time_at(0) == 100
    reader.close()


def test_the_reader_searches_and_walks_a_long_index(tmp_path: Path) -> None:
    count = logindex.BLOCK_RECORDS * 5 + 3
    reader = IndexReader(write_index(tmp_path, [(10 * (i + 1), i) for i in range(count)]))
    assert reader.time_at(10 * 700 + 5) == 700  # a search lands in the middle
    assert [reader.time_at(10 * i) for i in range(700, count)] == list(range(700, count))
    assert reader.time_at(10 * count) is None
    assert reader.time_at(0) == 0
    reader.close()


def test_the_reader_sees_the_index_appear_and_grow(tmp_path: Path) -> None:
    log = str(tmp_path / "stdout.log")
    reader = IndexReader(log)
    assert reader.time_at(0) is None  # no index yet
    (tmp_path / "stdout.idx").write_bytes(RECORD.pack(3, 7))
    assert reader.time_at(0) == 7
    assert reader.time_at(3) is None
    # Half a record (a writer's append seen midway) is not read as one.
    grow(tmp_path / "stdout.idx", RECORD.pack(6, 8)[:5])
    assert reader.time_at(3) is None
    grow(tmp_path / "stdout.idx", RECORD.pack(6, 8)[5:])
    assert reader.time_at(3) == 8
    reader.close()


def test_an_index_open_before_its_removal_stays_readable(tmp_path: Path) -> None:
    reader = IndexReader(write_index(tmp_path, [(2, 100)]))
    os.unlink(tmp_path / "stdout.idx")
    assert reader.time_at(0) == 100
    reader.close()
