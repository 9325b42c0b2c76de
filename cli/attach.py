"""An attached session: this terminal <-> the service's attach WebSocket.

With ``-t`` and a terminal on stdin, the terminal goes into raw mode: every
key, Ctrl-C included, goes to the container, whose own pty turns it into
SIGINT for its foreground job (termios(3), ISIG).  Ctrl-P Ctrl-Q detaches,
as with docker.  Without ``-t``, Ctrl-C detaches and the container keeps
running: docker would forward SIGINT, but the command is PID 1 of its PID
namespace and never gets a signal it has no handler for
(pid_namespaces(7)), so detaching is what a user can rely on; ``mydocker
kill`` sends signals.

The terminal is restored on every way out (try/finally): the container's
exit, a detach, an error, SIGTERM or SIGHUP (turned into SystemExit here).
Terminal resizes (SIGWINCH) are sent as resize messages.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import termios
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, BinaryIO

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from cli.client import Api

#: Ctrl-P Ctrl-Q, docker's default detach keys.
DETACH_KEYS = b"\x10\x11"


@dataclass
class Outcome:
    """How a session ended: the exit message's fields, or a detach."""

    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None
    exited: bool = False
    detached: bool = False


def terminal_size() -> tuple[int, int] | None:
    for fd in (1, 0, 2):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        if size.lines > 0 and size.columns > 0:
            return size.lines, size.columns
    return None


def session(
    api: Api,
    path: str,
    *,
    tty_mode: bool,
    interactive: bool,
    logs: bool = True,
    out: BinaryIO | None = None,
    err: Callable[[str], None] | None = None,
) -> Outcome:
    """Attach to ``path`` (``/containers/ID/attach`` or ``/execs/ID/attach``)
    until the process exits or the user detaches."""
    out = out or sys.stdout.buffer
    # Without a tty, stdout and stderr come tagged and go to ours apart.
    errors = sys.stderr.buffer if not tty_mode else None
    stdin_is_tty = os.isatty(0)
    raw = tty_mode and interactive and stdin_is_tty
    outcome = Outcome()
    wake_read, wake_write = os.pipe()
    saved_termios = termios.tcgetattr(0) if raw else None
    previous: dict[int, Any] = {}

    def say(message: str) -> None:
        line = f"mydocker: {message}"
        if err is not None:
            err(line)
        else:
            sys.stderr.write(line + ("\r\n" if raw else "\n"))
            sys.stderr.flush()

    def on_winch(signo: int, frame: FrameType | None) -> None:
        os.write(wake_write, b"W")

    def on_term(signo: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signo)

    try:
        with api.websocket(path, logs=logs, split=errors is not None) as ws:
            if tty_mode:
                previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
                _send_size(ws)
            for signo in (signal.SIGTERM, signal.SIGHUP):
                previous[signo] = signal.signal(signo, on_term)

            def on_int(signo: int, frame: FrameType | None) -> None:
                # Ctrl-C detaches.  Not by raising KeyboardInterrupt into the
                # websocket library's receive (where it may land in its
                # locking and leave the close waiting): the socket is shut
                # down, its reader sees EOF and the receive loop ends.
                outcome.detached = True
                try:
                    ws.socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            previous[signal.SIGINT] = signal.signal(signal.SIGINT, on_int)
            if raw:
                tty.setraw(0)
            pump = threading.Thread(
                target=_pump_input,
                args=(ws, interactive, raw, wake_read, outcome),
                name="stdin",
                daemon=True,
            )
            pump.start()
            try:
                _receive(ws, out, errors, outcome, say)
            except KeyboardInterrupt:
                outcome.detached = True
            finally:
                os.write(wake_write, b"Q")
    finally:
        if saved_termios is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved_termios)
        for number, handler in previous.items():
            signal.signal(number, handler)
        os.close(wake_write)
        # wake_read belongs to the pump thread, which closes it on its way out
    return outcome


def _receive(
    ws: ClientConnection,
    out: BinaryIO,
    errors: BinaryIO | None,
    outcome: Outcome,
    say: Callable[[str], None],
) -> None:
    """Output to ``out``; with ``errors``, frames are tagged (1 stdout, 2 stderr)."""
    try:
        for message in ws:
            if isinstance(message, bytes):
                target = out
                if errors is not None and message:
                    target = errors if message[0] == 2 else out
                    message = message[1:]
                target.write(message)
                target.flush()
                continue
            try:
                control = json.loads(message)
            except ValueError:
                continue
            if control.get("type") == "exit":
                outcome.exited = True
                outcome.exit_code = control.get("exit_code")
                outcome.signal = control.get("signal")
                outcome.error = control.get("error")
            elif control.get("type") == "error":
                say(str(control.get("message")))
    except ConnectionClosed as closed:
        if closed.rcvd is not None and closed.rcvd.code >= 4000:
            outcome.error = closed.rcvd.reason or f"closed with {closed.rcvd.code}"


def _send_size(ws: ClientConnection) -> None:
    size = terminal_size()
    if size is not None:
        try:
            ws.send(json.dumps({"type": "resize", "rows": size[0], "cols": size[1]}))
        except ConnectionClosed:
            pass


def _pump_input(
    ws: ClientConnection, interactive: bool, raw: bool, wake: int, outcome: Outcome
) -> None:
    """stdin -> the socket, resizes on SIGWINCH; ends when woken with Q."""
    reading = interactive
    held = b""  # a Ctrl-P that may start the detach keys
    try:
        while True:
            fds = [wake] + ([0] if reading else [])
            ready, _, _ = select.select(fds, [], [])
            if wake in ready:
                note = os.read(wake, 64)
                if b"Q" in note:
                    return
                if b"W" in note:
                    _send_size(ws)
            if reading and 0 in ready:
                data = os.read(0, 4096)
                if not data:
                    reading = False
                    ws.send(json.dumps({"type": "eof"}))
                    continue
                if raw:
                    data, detach = _scan_detach(held + data)
                    held = b""
                    if data.endswith(DETACH_KEYS[:1]):
                        data, held = data[:-1], DETACH_KEYS[:1]
                    if data:
                        ws.send(data)
                    if detach:
                        outcome.detached = True
                        ws.close()
                        return
                else:
                    ws.send(data)
    except (ConnectionClosed, OSError):
        return
    finally:
        os.close(wake)


def _scan_detach(data: bytes) -> tuple[bytes, bool]:
    """``(what to send, detach?)``: everything before the detach keys."""
    index = data.find(DETACH_KEYS)
    if index < 0:
        return data, False
    return data[:index], True
