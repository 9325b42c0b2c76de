"""runtime.logs: tail offsets and streaming of the captured output files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtime import logs
from runtime.logs import CHUNK, read_from, stream, tail_offset


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
