"""JSON lines over a stream socket: the launcher protocol's framing.

encode      one message -> one compact line
LineReader  a byte stream -> messages (a partial line waits for the rest)
send        one message over a blocking socket
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

MAX_LINE = 16 << 20


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Splits a byte stream into JSON messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages: list[dict[str, Any]] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ValueError("message too long")
                return messages
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.strip():
                messages.append(json.loads(line))


def send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(encode(message))
