"""The launcher's interactive plumbing without a clone: a pty whose master
arrives over the console socket, input written before it arrives, resizes,
the stdin pipe's EOF, and the drain into the log."""

from __future__ import annotations

import base64
import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import terminal
from runtime.launcher import protocol, ptyio, server
from runtime.launcher import stdio as launcher_stdio
from runtime.launcher.entry import Entry, Process
from runtime.launcher.protocol import RequestError
from runtime.launcher.ready import Source
from runtime.launcher.transport import Client
from runtime.spec import Status


@pytest.fixture
def launcher() -> Iterator[server.Launcher]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    launcher = server.Launcher(listener)
    yield launcher
    launcher.selector.close()
    listener.close()


def adopt(
    launcher: server.Launcher, tmp_path: Path, tty: bool, stdin: bool
) -> tuple[Entry, terminal.Stdio]:
    paths = launcher_stdio.Paths(str(tmp_path / "out"), str(tmp_path / "err"))
    stdio = launcher_stdio.open_stdio(tty, stdin, paths)
    error_read, error_write = os.pipe()
    os.close(error_write)
    process = Process(
        pid=1, pidfd=os.eventfd(0), pid_start_time=None, sync_write=-1, error_read=error_read
    )
    entry = Entry(id="c", process=process)
    launcher.spawner._adopt(entry, stdio)
    entry.state = Status.running
    return entry, stdio


def requester() -> Client:
    """Who sent an op: write, resize and close_stdin answer without using it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.close()
    return Client(sock)


def write(launcher: server.Launcher, data: bytes) -> None:
    message = {"op": "write", "id": "c", "data": base64.b64encode(data).decode()}
    op = protocol.decode_request(message)
    assert isinstance(op, protocol.Write)
    launcher.ops.write(requester(), 1, op)


def turn(launcher: server.Launcher) -> None:
    """One pass of the loop's I/O handlers over what is ready now."""
    for key, mask in launcher.selector.select(timeout=0.2):
        if key.data.source in (Source.PTY, Source.CONSOLE, Source.STDIN):
            key.data.handle(mask)


def test_input_and_resize_before_the_master_arrives_are_kept(
    launcher: server.Launcher, tmp_path: Path
) -> None:
    entry, stdio = adopt(launcher, tmp_path, tty=True, stdin=False)
    write(launcher, b"early\n")  # no master yet: buffered, not refused
    launcher.ops.resize(requester(), 2, protocol.Resize("c", 21, 42))
    slave = terminal.open_console(stdio.child_console, None)  # what the child does
    os.close(stdio.child_console)
    try:
        turn(launcher)
        assert entry.io.master >= 0 and entry.io.console is None
        assert terminal.get_winsize(slave) == (21, 42)
        assert select.select([slave], [], [], 5)[0]
        assert os.read(slave, 100) == b"early\n"
        os.write(slave, b"output\n")
        # The pty hands data to the master asynchronously: the echo and the
        # output may become readable in separate passes of the loop.
        expected = b"early\r\noutput\r\n"
        for _ in range(25):
            turn(launcher)
            if (tmp_path / "out").read_bytes() == expected:
                break
        # The pty's echo of the input, then the output, both with ONLCR's \r.
        assert (tmp_path / "out").read_bytes() == expected
        launcher.ops.close_stdin(requester(), 3, protocol.CloseStdin("c"))
        assert os.read(slave, 100) == b""  # ^D in canonical mode: a read of 0 bytes
    finally:
        os.close(slave)
    launcher.pty.release(entry)
    assert entry.io.master == -1 and entry.io.log_fd == -1


def test_a_child_that_dies_before_sending_the_master_leaves_no_tty(
    launcher: server.Launcher, tmp_path: Path
) -> None:
    entry, stdio = adopt(launcher, tmp_path, tty=True, stdin=False)
    os.close(stdio.child_console)
    launcher.pty.release(entry)  # at reap: EOF on the console socket, no wait
    assert entry.io.console is None and entry.io.master == -1


def test_the_stdin_pipe_closes_once_drained(launcher: server.Launcher, tmp_path: Path) -> None:
    entry, stdio = adopt(launcher, tmp_path, tty=False, stdin=True)
    write(launcher, b"line\n")
    launcher.ops.close_stdin(requester(), 2, protocol.CloseStdin("c"))
    assert entry.io.stdin_write == -1
    assert os.read(stdio.stdin, 100) == b"line\n"
    assert os.read(stdio.stdin, 100) == b""  # EOF for the process
    with pytest.raises(RequestError, match="no tty"):
        launcher.ops.resize(requester(), 3, protocol.Resize("c", 1, 1))
    with pytest.raises(RequestError, match="closed"):
        write(launcher, b"late")
    for fd in stdio.child_fds:
        os.close(fd)


def test_input_a_process_does_not_read_is_capped(launcher: server.Launcher, tmp_path: Path) -> None:
    entry, stdio = adopt(launcher, tmp_path, tty=False, stdin=True)
    with pytest.raises(RequestError, match="not reading its input"):
        for _ in range(ptyio.MAX_PENDING_INPUT // (1 << 16) + 2):
            write(launcher, b"x" * (1 << 16))
    assert len(entry.io.pending_input) <= ptyio.MAX_PENDING_INPUT
    for fd in stdio.child_fds:
        os.close(fd)
    launcher.pty.release(entry)


def test_no_stdin_no_input(launcher: server.Launcher, tmp_path: Path) -> None:
    _, stdio = adopt(launcher, tmp_path, tty=False, stdin=False)
    with pytest.raises(RequestError, match="no stdin open"):
        write(launcher, b"x")
    for fd in stdio.child_fds:
        os.close(fd)
