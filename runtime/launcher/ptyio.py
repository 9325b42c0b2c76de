"""Interactive entries' I/O in the launcher: the pty master and the stdin pipe.

    PtyIo
    ├── adopt_console / receive_master   the master arrives from the child (tty)
    ├── drain                            master -> the entry's stdout.log
    ├── write / close_stdin / resize     the ops' effects, input buffered
    ├── flush_input                      buffered input -> master or pipe
    └── release                          at exit: last output, close our ends

The loop reads each pty master and appends what it reads to the entry's
``stdout.log``, so output is drained whether or not anybody is attached
(runtime/terminal.py), and it writes attach input into the master or the
stdin pipe, buffering what the process has not read yet.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import socket

from runtime import terminal
from runtime.launcher.entry import Entry
from runtime.launcher.protocol import ErrorKind, RequestError
from runtime.launcher.ready import Ready, Source

log = logging.getLogger("mydocker.launcher")

#: Attach input the process has not read yet; past this, ``write`` fails.
MAX_PENDING_INPUT = 1 << 20
READ_CHUNK = 1 << 16


class PtyIo:
    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector

    def adopt_console(self, entry: Entry, console: int) -> None:
        """Wait for the pty master on our end of the console socket."""
        entry.io.console = socket.socket(fileno=console)
        ready = Ready(Source.CONSOLE, lambda mask: self.receive_master(entry))
        self.selector.register(entry.io.console, selectors.EVENT_READ, ready)

    def receive_master(self, entry: Entry) -> None:
        """The child sent its pty's master (terminal.open_console), or died first."""
        io = entry.io
        sock = io.console
        if sock is None:
            return
        try:
            master = terminal.receive_master(sock)
        except OSError:
            master = None
        self.selector.unregister(sock)
        sock.close()
        io.console = None
        if master is None:
            return
        os.set_blocking(master, False)
        io.master = master
        io.master_readable = True
        if io.pending_size is not None:
            try:
                terminal.set_winsize(master, *io.pending_size)
            except OSError as err:
                log.warning("%s: resize: %s", entry.id, err)
            io.pending_size = None
        self._update_pty_events(entry)
        self.flush_input(entry)

    def _pty_ready(self, entry: Entry, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.flush_input(entry)
        if mask & selectors.EVENT_READ and entry.io.master_readable:
            self.drain(entry, once=True)

    def drain(self, entry: Entry, once: bool = False) -> None:
        """Copy what the master holds into the log; stop reading at hang-up."""
        io = entry.io
        while io.master_readable:
            try:
                data = os.read(io.master, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""  # EIO: no slave is open any more (pty(7))
            if not data:
                io.master_readable = False
                self._update_pty_events(entry)
                return
            _write_all(io.log_fd, data)
            if once:
                return

    def _update_pty_events(self, entry: Entry) -> None:
        io = entry.io
        events = (selectors.EVENT_READ if io.master_readable else 0) | (
            selectors.EVENT_WRITE if io.pending_input else 0
        )
        registered = io.master in self.selector.get_map()
        ready = Ready(Source.PTY, functools.partial(self._pty_ready, entry))
        if events and registered:
            self.selector.modify(io.master, events, ready)
        elif events:
            self.selector.register(io.master, events, ready)
        elif registered:
            self.selector.unregister(io.master)

    def check_open(self, entry: Entry) -> None:
        """Refuse input for an entry whose stdin is closed, absent or gone."""
        io = entry.io
        if io.close_input:
            raise RequestError(ErrorKind.INVALID_STATE, f"the stdin of {entry.id} is closed")
        if io.input_fd < 0 and io.console is None:
            raise RequestError(
                ErrorKind.INVALID_STATE, f"{entry.id} has no stdin open (tty or stdin)"
            )
        if entry.exit is not None:
            raise RequestError(ErrorKind.INVALID_STATE, f"{entry.id} is not running")

    def write(self, entry: Entry, data: bytes) -> None:
        self.check_open(entry)
        io = entry.io
        if len(io.pending_input) + len(data) > MAX_PENDING_INPUT:
            raise RequestError(ErrorKind.INVALID_STATE, f"{entry.id} is not reading its input")
        io.pending_input += data
        self.flush_input(entry)

    def close_stdin(self, entry: Entry) -> None:
        """End of input: the pipe is closed once drained; a tty gets its EOF
        character (termios(3): VEOF, ^D, ends a read in canonical mode)."""
        self.check_open(entry)
        io = entry.io
        if io.master >= 0 or io.console is not None:
            io.pending_input += b"\x04"
        else:
            io.close_input = True
        self.flush_input(entry)

    def resize(self, entry: Entry, rows: int, cols: int) -> None:
        io = entry.io
        if io.master >= 0:
            terminal.set_winsize(io.master, rows, cols)
        elif io.console is not None:
            io.pending_size = (rows, cols)  # the master is on its way
        else:
            raise RequestError(ErrorKind.INVALID_STATE, f"{entry.id} has no tty")

    def flush_input(self, entry: Entry) -> None:
        io = entry.io
        fd = io.input_fd
        if fd < 0:
            return  # a tty whose master has not arrived yet keeps the input
        while io.pending_input:
            try:
                written = os.write(fd, io.pending_input)
            except BlockingIOError:
                break
            except OSError:
                io.pending_input.clear()  # EPIPE/EIO: nobody will read it
                break
            del io.pending_input[:written]
        if io.master >= 0:
            self._update_pty_events(entry)
            return
        registered = fd in self.selector.get_map()
        if io.pending_input and not registered:
            ready = Ready(Source.STDIN, lambda mask: self.flush_input(entry))
            self.selector.register(fd, selectors.EVENT_WRITE, ready)
        elif not io.pending_input:
            if registered:
                self.selector.unregister(fd)
            if io.close_input:
                os.close(fd)
                io.stdin_write = -1

    def release(self, entry: Entry) -> None:
        """At exit: the last output into the log, then close the launcher's ends."""
        io = entry.io
        if io.console is not None:
            # The child is gone, so the socket holds the master or EOF: no wait.
            self.receive_master(entry)
        if io.master >= 0:
            self.drain(entry)
            if io.master in self.selector.get_map():
                self.selector.unregister(io.master)
            os.close(io.master)
            io.master = -1
        if io.stdin_write >= 0:
            if io.stdin_write in self.selector.get_map():
                self.selector.unregister(io.stdin_write)
            os.close(io.stdin_write)
            io.stdin_write = -1
        if io.log_fd >= 0:
            os.close(io.log_fd)
            io.log_fd = -1
        io.pending_input.clear()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
