"""runtime.launcher.framing: JSON lines over a unix socket (encode, the
line reader and its limits, send)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from runtime.launcher.framing import MAX_LINE, LineReader, encode, send


def test_encode_is_one_compact_line() -> None:
    data = encode({"op": "kill", "id": "ab", "signal": 9, "text": "a\nb"})
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1  # a newline inside a string is escaped
    assert b" " not in data
    assert json.loads(data) == {"op": "kill", "id": "ab", "signal": 9, "text": "a\nb"}


def test_reader_splits_several_messages_in_one_feed() -> None:
    reader = LineReader()
    assert reader.feed(encode({"a": 1}) + encode({"b": 2})) == [{"a": 1}, {"b": 2}]


def test_reader_joins_a_message_split_across_feeds() -> None:
    reader = LineReader()
    data = encode({"event": "exit", "id": "x" * 64, "exit_code": 0})
    messages = []
    for byte in data:  # one byte at a time, the worst case
        messages += reader.feed(bytes([byte]))
    assert messages == [{"event": "exit", "id": "x" * 64, "exit_code": 0}]


def test_reader_keeps_a_partial_tail_for_the_next_feed() -> None:
    reader = LineReader()
    first, second = encode({"n": 1}), encode({"n": 2})
    assert reader.feed(first + second[:3]) == [{"n": 1}]
    assert reader.feed(second[3:]) == [{"n": 2}]


def test_reader_skips_blank_lines() -> None:
    assert LineReader().feed(b"\n  \n" + encode({"ok": True})) == [{"ok": True}]


def test_reader_rejects_an_endless_line() -> None:
    reader = LineReader()
    with pytest.raises(ValueError, match="too long"):
        reader.feed(b"x" * (MAX_LINE + 1))


def test_reader_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        LineReader().feed(b"{not json\n")


def test_send_over_a_socketpair() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        big = {"req": 7, "op": "create", "spec": {"command": ["echo", "y" * 200_000]}}
        # sendall of a message larger than the socket buffer needs a reader.
        thread = threading.Thread(target=send, args=(left, big))
        thread.start()
        reader = LineReader()
        received: list[dict[str, object]] = []
        while not received:
            received += reader.feed(right.recv(1 << 16))
        thread.join()
    assert received == [big]
