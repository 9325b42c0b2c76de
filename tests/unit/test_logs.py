"""runtime.logs: tail offsets and streaming of the captured output files."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from runtime import logs
from runtime.logindex import RECORD
from runtime.logs import CHUNK, dated, joined, read_from, stream, tail_offset


def _tail(path: Path, lines: int) -> bytes:
    return path.read_bytes()[tail_offset(str(path), lines) :]


@pytest.mark.parametrize(
    ("content", "lines", "expected"),
    [
        (b"a\nb\nc\n", 1, b"c\n"),
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
        # No trailing newline: the unfinished last line counts as a line.
        (b"a\nb\nc", 1, b"c"),
        (b"a\nb\nc", 2, b"b\nc"),
        (b"a\nb\nc", 5, b"a\nb\nc"),
        # Empty lines are lines.
        (b"\n\n\n", 2, b"\n\n"),
        (b"\n", 1, b"\n"),
        (b"one line", 1, b"one line"),
        (b"a\nb\n", 0, b""),
        (b"", 3, b""),
    ],
)
def test_tail_offset(tmp_path: Path, content: bytes, lines: int, expected: bytes) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(content)
    assert _tail(path, lines) == expected


def test_tail_offset_of_a_missing_file_is_zero(tmp_path: Path) -> None:
    assert tail_offset(str(tmp_path / "missing"), 5) == 0


def test_tail_offset_across_chunk_boundaries(tmp_path: Path) -> None:
    # Lines of odd lengths so newlines fall on, just before and just after
    # multiples of CHUNK; 3 MB so the backward scan crosses many chunks.
    lines = [b"x" * (i % 997) + b"\n" for i in range(6000)]
    data = b"".join(lines)
    assert len(data) > 40 * CHUNK
    path = tmp_path / "big.log"
    path.write_bytes(data)
    for n in (1, 2, 100, 1234, 5999, 6000, 6001):
        assert _tail(path, n) == b"".join(lines[-n:]), n


def test_tail_offset_when_a_newline_sits_exactly_on_a_chunk_boundary(tmp_path: Path) -> None:
    # The byte just before the last CHUNK of the file is a newline.
    data = b"a" * (CHUNK - 1) + b"\n" + b"b" * (CHUNK - 1) + b"\n"
    path = tmp_path / "edge.log"
    path.write_bytes(data)
    assert _tail(path, 1) == b"b" * (CHUNK - 1) + b"\n"
    assert _tail(path, 2) == data
    # A single line longer than a chunk.
    path.write_bytes(b"z" * (3 * CHUNK + 5))
    assert _tail(path, 1) == b"z" * (3 * CHUNK + 5)


def test_read_from_an_offset_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(b"0123456789" * (CHUNK // 4))
    chunks = list(read_from(str(path), 5))
    assert all(len(c) <= CHUNK for c in chunks)
    assert b"".join(chunks) == path.read_bytes()[5:]
    assert list(read_from(str(tmp_path / "missing"), 0)) == []


def test_stream_without_follow_gives_each_file_in_order(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"o1\no2\n")
    err.write_bytes(b"e1\ne2\n")
    never = lambda: pytest.fail("running() must not be asked without follow")  # noqa: E731
    assert b"".join(stream([str(out), str(err)], None, False, never)) == b"o1\no2\ne1\ne2\n"
    assert b"".join(stream([str(out), str(err)], 1, False, never)) == b"o2\ne2\n"
    assert b"".join(stream([str(tmp_path / "none")], None, False, never)) == b""


def test_stream_follow_reads_what_is_appended_until_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "FOLLOW_POLL_SECONDS", 0.001)
    out = tmp_path / "stdout.log"
    out.write_bytes(b"before\n")
    # A fake container: each call of running() appends a line, and the
    # fourth call writes its last line and reports it has exited.
    calls = 0

    def running() -> bool:
        nonlocal calls
        calls += 1
        with out.open("ab") as f:
            f.write(f"line {calls}\n".encode())
        return calls < 4

    data = b"".join(stream([str(out)], None, True, running))
    assert data == b"before\nline 1\nline 2\nline 3\nline 4\n"
    assert calls == 4


def test_stream_follow_sees_output_written_just_before_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # running() is read before the files on each pass, so the last pass
    # after the exit still picks up the final output.
    monkeypatch.setattr(logs, "FOLLOW_POLL_SECONDS", 0.001)
    out = tmp_path / "stdout.log"
    out.write_bytes(b"")
    done = threading.Event()

    def writer() -> None:
        with out.open("ab") as f:
            for i in range(200):
                f.write(b"%d\n" % i)
                f.flush()
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    data = b"".join(stream([str(out)], None, True, lambda: not done.is_set()))
    thread.join()
    assert data == b"".join(b"%d\n" % i for i in range(200))


def test_stream_follow_with_tail_starts_at_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "FOLLOW_POLL_SECONDS", 0.001)
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"a\nb\n")
    states = iter([True, False])

    def running() -> bool:
        alive = next(states)
        if not alive:
            err.write_bytes(b"late\n")  # a file that appears while following
        return alive

    assert b"".join(stream([str(out), str(err)], 1, True, running)) == b"b\nlate\n"


def test_a_cursor_returns_what_was_appended_since_its_last_read(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"before\n")
    replaying = logs.Cursor([str(out), str(err)])
    following = logs.Cursor([str(out), str(err)], from_start=False)
    try:
        assert replaying.read() == b"before\n"
        assert following.read() == b""
        assert replaying.read() == b""
        with out.open("ab") as f:
            f.write(b"more\n")
        err.write_bytes(b"late file\n")  # created after the cursor
        assert replaying.read() == b"more\nlate file\n"
        assert following.read() == b"more\nlate file\n"
        big = b"x" * (CHUNK + 10)
        with out.open("ab") as f:
            f.write(big)
        assert len(replaying.read()) == CHUNK  # at most `limit` per call
        assert replaying.read() == b"x" * 10
        with err.open("ab") as f:
            f.write(b"e")
        with out.open("ab") as f:
            f.write(b"o")
        assert replaying.read_streams() == [(0, b"o"), (1, b"e")]  # which file said what
    finally:
        replaying.close()
        following.close()


# -- dated lines (runtime/logindex.py gives the times) ---------------------------------
def write_log(tmp_path: Path, name: str, data: bytes, records: list[tuple[int, int]]) -> str:
    """A log and its index, with made-up times."""
    (tmp_path / f"{name}.log").write_bytes(data)
    if records:
        (tmp_path / f"{name}.idx").write_bytes(b"".join(RECORD.pack(*r) for r in records))
    return str(tmp_path / f"{name}.log")


def never() -> bool:
    return False


def fallback() -> int:
    return 999


def read_dated(paths: list[str], **options) -> list[tuple[int, int, bytes]]:
    options.setdefault("tail", None)
    return list(dated(paths, options.pop("tail"), False, never, fallback, **options))


def test_each_line_has_the_time_of_the_first_record_past_its_start(tmp_path: Path) -> None:
    # "a\n" seen at 10, "b\nc" at 20 (c unfinished then), "c\nd\n" at 30.
    log = write_log(tmp_path, "stdout", b"a\nb\ncc\nd\n", [(2, 10), (5, 20), (9, 30)])
    assert read_dated([log]) == [
        (0, 10, b"a\n"),
        (0, 20, b"b\n"),
        (0, 20, b"cc\n"),
        (0, 30, b"d\n"),
    ]


def test_lines_past_the_index_get_the_fallback_and_an_unfinished_one_comes_too(
    tmp_path: Path,
) -> None:
    log = write_log(tmp_path, "stdout", b"a\nb\nc", [(2, 10)])
    assert read_dated([log]) == [(0, 10, b"a\n"), (0, 999, b"b\n"), (0, 999, b"c")]
    no_index = write_log(tmp_path, "old", b"x\n", [])
    assert read_dated([no_index]) == [(0, 999, b"x\n")]


@pytest.mark.parametrize(
    ("since", "until", "kept"),
    [
        (None, None, [b"a\n", b"b\n", b"c\n"]),
        (20, None, [b"b\n", b"c\n"]),  # since is inclusive, as Docker's
        (21, None, [b"c\n"]),
        (None, 20, [b"a\n", b"b\n"]),  # so is until
        (11, 29, [b"b\n"]),
        (31, None, []),
    ],
)
def test_since_and_until_keep_the_lines_in_between(
    tmp_path: Path, since: int | None, until: int | None, kept: list[bytes]
) -> None:
    log = write_log(tmp_path, "stdout", b"a\nb\nc\n", [(2, 10), (4, 20), (6, 30)])
    assert [line for _, _, line in read_dated([log], since=since, until=until)] == kept


def test_the_streams_are_merged_by_time_stdout_first_on_a_tie(tmp_path: Path) -> None:
    out = write_log(tmp_path, "stdout", b"o1\no2\n", [(3, 10), (6, 30)])
    err = write_log(tmp_path, "stderr", b"e1\ne2\n", [(3, 10), (6, 20)])
    assert read_dated([out, err]) == [
        (0, 10, b"o1\n"),
        (1, 10, b"e1\n"),
        (1, 20, b"e2\n"),
        (0, 30, b"o2\n"),
    ]


def test_tail_then_dates(tmp_path: Path) -> None:
    log = write_log(tmp_path, "stdout", b"a\nb\nc\n", [(2, 10), (4, 20), (6, 30)])
    assert read_dated([log], tail=2) == [(0, 20, b"b\n"), (0, 30, b"c\n")]


def test_a_very_long_line_comes_in_pieces(tmp_path: Path) -> None:
    data = b"x" * (CHUNK * 2 + 10) + b"\n"
    log = write_log(tmp_path, "stdout", data, [(len(data), 10)])
    pieces = read_dated([log])
    assert b"".join(line for _, _, line in pieces) == data
    assert len(pieces) > 1 and all(when == 10 for _, when, _ in pieces)


def test_following_holds_an_undated_line_until_the_launcher_dates_it(tmp_path: Path) -> None:
    log = write_log(tmp_path, "stdout", b"a\n", [])
    alive = [True]
    lines = dated([log], None, True, lambda: alive[0], fallback, heartbeat=True, sleep=False)
    assert next(lines) == (0, 0, b"")  # a heartbeat: "a" waits for its record
    (tmp_path / "stdout.idx").write_bytes(RECORD.pack(2, 55))
    assert next(lines) == (0, 55, b"a\n")
    with (tmp_path / "stdout.log").open("ab") as f:
        f.write(b"prompt$ ")
    with (tmp_path / "stdout.idx").open("ab") as f:
        f.write(RECORD.pack(10, 66))
    # Unfinished, then quiet for a poll: it goes out as it is.
    assert next(lines) == (0, 66, b"prompt$ ")
    alive[0] = False
    assert list(lines) == [(0, 0, b"")]  # the rest of that quiet poll, then the end


def test_following_dates_a_line_itself_once_out_of_patience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "INDEX_PATIENCE_SECONDS", 0.0)
    log = write_log(tmp_path, "stdout", b"a\n", [])
    lines = dated([log], None, True, lambda: True, fallback, heartbeat=True, sleep=False)
    assert next(lines) == (0, 999, b"a\n")
    assert isinstance(lines, Generator)
    lines.close()


def test_following_ends_once_until_has_passed(tmp_path: Path) -> None:
    log = write_log(tmp_path, "stdout", b"a\n", [(2, 10)])
    until = time.time_ns() - 1
    lines = dated([log], None, True, lambda: True, fallback, until=until, sleep=False)
    assert list(lines) == [(0, 10, b"a\n")]


def test_following_sees_lines_of_a_file_created_later(tmp_path: Path) -> None:
    log = str(tmp_path / "stdout.log")
    alive = [True]
    lines = dated([log], None, True, lambda: alive[0], fallback, heartbeat=True, sleep=False)
    assert next(lines) == (0, 0, b"")
    write_log(tmp_path, "stdout", b"late\n", [(5, 77)])
    alive[0] = False
    assert list(lines) == [(0, 77, b"late\n")]


def test_joined_puts_each_time_before_its_line_and_keeps_heartbeats() -> None:
    lines = iter([(0, 1_795_928_400_123_456_789, b"a\n"), (1, 1_795_928_401 * 10**9, b"b\n")])
    assert list(joined(lines, timestamps=True)) == [
        b"2026-11-29T05:00:00.123456789Z a\n2026-11-29T05:00:01.000000000Z b\n"
    ]
    assert list(joined(iter([(0, 5, b"a\n"), (0, 0, b""), (0, 6, b"b")]), False)) == [
        b"a\n",
        b"",
        b"b",
    ]


def test_batched_gathers_up_to_the_limit_and_passes_heartbeats() -> None:
    pieces = [b"ab", b"cd", b"ef", b"", b"g", b"hijk", b"l"]
    assert list(logs.batched(pieces, 4)) == [b"abcd", b"ef", b"", b"ghijk", b"l"]
