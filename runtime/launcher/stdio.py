"""A new child's stdio: where its output goes (``Paths``), its fds 0/1/2 and
the launcher's ends of them (``open_stdio``: log files, a stdin pipe, or a
terminal's socket pair; terminal.Stdio), and closing what was opened."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from runtime import terminal


@dataclass(frozen=True)
class Paths:
    """Where a new child's output goes."""

    stdout: str
    stderr: str


def open_stdio(tty: bool, stdin: bool, paths: Paths, discard: bool = False) -> terminal.Stdio:
    """The child's fds 0/1/2 and the launcher's ends (see terminal.Stdio).

    With ``discard`` (the ``none`` log driver) the log files are made, and
    stay empty: the output goes to /dev/null."""
    opened: list[int] = []

    def keep(fd: int) -> int:
        opened.append(fd)
        return fd

    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        out_fd = keep(os.open(paths.stdout, flags, 0o640))
        # A tty merges stderr into stdout, as docker's does; the file
        # still exists so that reading logs needs no special case.
        err_fd = keep(os.open(paths.stderr, flags, 0o640))
        if discard:
            for fd in (out_fd, err_fd):
                null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
                os.dup2(null, fd, inheritable=False)
                os.close(null)
        if tty:
            os.close(err_fd)
            opened.remove(err_fd)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console, child_console = keep(ours.detach()), keep(theirs.detach())
            return terminal.Stdio(-1, -1, -1, child_console, console, -1, out_fd, (child_console,))
        if stdin:
            in_fd, stdin_write = os.pipe2(os.O_CLOEXEC)
            keep(in_fd)
            keep(stdin_write)
            os.set_blocking(stdin_write, False)
        else:
            in_fd, stdin_write = keep(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)), -1
        return terminal.Stdio(
            in_fd, out_fd, err_fd, -1, -1, stdin_write, -1, (in_fd, out_fd, err_fd)
        )
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise


def close_stdio(stdio: terminal.Stdio) -> None:
    for fd in {*stdio.child_fds, stdio.console, stdio.stdin_write, stdio.log_fd}:
        if fd >= 0:
            os.close(fd)
