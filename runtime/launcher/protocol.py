"""The launcher's wire format: one JSON object per line, over a unix socket.

Requests carry ``"req"`` (a number chosen by the client) and ``"op"``; the
reply carries the same ``"req"`` and either ``"ok": true`` with results or
``"ok": false`` with ``"error"`` (a sentence), ``"kind"`` (``"not_found"``,
``"invalid_state"``, ``"invalid"``, ``"failed"``) and, when an OSError caused
it, ``"errno"``.  Events carry ``"event"``
and are sent to every connected client.

ops:
    hello                    -> {version, pid}
    create {id, spec, stdout, stderr, start, tty_size?, pidfile?}
                             -> {pid, pid_start_time, exec_error}  (after exec when start)
    start {id}               -> {exec_error}
    exec {id, container, spec, stdout, stderr, tty_size?}
                             -> {pid, pid_start_time, exec_error}  (after exec)
    kill {id, signal}        -> {}
    kill_many {ids, signal}  -> {killed: [id, ...], not_running: [id, ...]}
                                (each as ``kill``; not running is listed, not an error;
                                launchers before it answer "unknown op")
    write {id, data}         -> {}   data (base64) to the pty master or stdin pipe
    close_stdin {id}         -> {}   EOF: close the pipe once drained; ^D on a tty
    resize {id, rows, cols}  -> {}   TIOCSWINSZ on the pty master
    stats {id}               -> {stats: {memory_bytes, memory_peak_bytes, cpu_seconds, pids}}
                                (invalid_state unless running)
    list                     -> {containers: [entry, ...]}
    ack {id}                 -> {}   the client has recorded the exit; forget it
    shutdown                 -> {}   exit once no container is left
events:
    exit {id, kind, exit_code, signal, finished_at, results}   kind: "container" or "exec"
        results (containers): {oom_killed, timed_out, output_truncated, cpu_seconds,
                               memory_peak_bytes, wall_seconds}
"""

from __future__ import annotations

import json
import socket
from typing import Any

VERSION = 2
MAX_LINE = 16 << 20


def encode(message: dict[str, Any]) -> bytes:
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


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))
