"""app/docker/detach.py: detach keys as Docker spells them, and the scan of stdin."""

from __future__ import annotations

import pytest

from app.docker import detach
from app.docker.errors import DockerError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("ctrl-x", b"\x18"),
        ("ctrl-@,ctrl-[,ctrl-_", b"\x00\x1b\x1f"),
        ("a,ctrl-a", b"a\x01"),
        ("CTRL-P", b"\x10"),
    ],
)
def test_keys(spec: str, expected: bytes) -> None:
    assert detach.keys(spec) == expected


@pytest.mark.parametrize("spec", ["ctrl-", "ctrl-1", "ab", "", "a,,b"])
def test_bad_keys_are_a_400_naming_them(spec: str) -> None:
    with pytest.raises(DockerError) as caught:
        detach.keys(spec)
    assert caught.value.status == 400 and "detach keys" in caught.value.message


def test_the_sequence_is_swallowed_and_ends_the_stream() -> None:
    escape = detach.Escape(b"\x10\x11")
    assert escape.feed(b"ab\x10") == (b"ab", False)  # a prefix is held back
    assert escape.feed(b"\x11rest") == (b"", True)


def test_a_broken_prefix_is_passed_on() -> None:
    escape = detach.Escape(b"\x10\x11")
    assert escape.feed(b"\x10x") == (b"\x10x", False)
    assert escape.feed(b"\x10\x10") == (b"\x10", False)  # the second may still start it
    assert escape.feed(b"\x11") == (b"", True)


def test_a_one_key_sequence() -> None:
    assert detach.Escape(b"\x10").feed(b"hi\x10there") == (b"hi", True)
