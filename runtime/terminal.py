"""Pseudo-terminals and stdin pipes for interactive containers.

A container (or exec) with ``tty`` gets the slave side of a pty as fds
0/1/2 and as its controlling terminal; the launcher keeps the master, drains
it into ``stdout.log`` (the single record of the output, replayed on attach)
and writes attach input into it.  With ``stdin`` but no ``tty`` the process
reads a pipe whose write end the launcher keeps.

Where the pty comes from: the child opens it itself, once its mounts are in
place, through its own ``/dev/ptmx`` (``open_console``): when the container
has its own ``/dev`` with a new devpts instance, the pty belongs to that
instance, so ``tty``/ttyname(3) inside find it under the container's
``/dev/pts``.  It keeps the slave and sends the master to the launcher over
a unix socketpair (SCM_RIGHTS, unix(7)), as runc's console socket does.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from dataclasses import dataclass

# struct winsize {unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel;} (tty_ioctl(4))
_WINSIZE = struct.Struct("HHHH")
MAX_DIMENSION = 0xFFFF


# <asm-generic/ioctls.h>: not in Python's termios module.
TIOCSPTLCK = 0x40045431  # _IOW('T', 0x31, int): lock/unlock the slave, unlockpt(3)
TIOCGPTPEER = 0x5441  # _IO('T', 0x41): open the slave by the master, no path lookup


@dataclass(frozen=True)
class Stdio:
    """The fds a child gets as 0/1/2, and the launcher's ends.

    With a tty, 0/1/2 are -1: the child opens the pty itself and sends the
    master over ``console`` (the launcher's end of a socketpair; the child's
    end is ``child_console``).  ``stdin_write`` is the write end of the stdin
    pipe (stdin without tty), ``log_fd`` the stdout log a master is drained
    into; each is -1 when absent.  ``child_fds`` are the launcher's copies of
    the child's fds, closed once the child exists.
    """

    stdin: int
    stdout: int
    stderr: int
    child_console: int
    console: int
    stdin_write: int
    log_fd: int
    child_fds: tuple[int, ...]


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int]:
    """``(master, slave)`` from the devpts instance ``ptmx`` belongs to (pts(4)).

    posix_openpt(3) + unlockpt(3), and the slave through TIOCGPTPEER, which
    does not look the slave up by path (ioctl_tty(2)); both close-on-exec."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def open_console(console: int, size: tuple[int, int] | None) -> int:
    """In the child: open a pty, give it its first size, send the master over
    the ``console`` socket and return the slave."""
    master, slave = open_pty()
    try:
        if size is not None:
            set_winsize(master, *size)
        sock = socket.socket(fileno=console)
        try:
            socket.send_fds(sock, [b"M"], [master])
        finally:
            sock.detach()  # the fd is the caller's to close
    finally:
        os.close(master)
    return slave


def receive_master(sock: socket.socket) -> int | None:
    """The launcher's side of ``open_console``: the master, or ``None`` at EOF."""
    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    return fds[0] if fds else None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ: the kernel sends SIGWINCH to the foreground process group."""
    if not (0 < rows <= MAX_DIMENSION and 0 < cols <= MAX_DIMENSION):
        raise ValueError(f"rows and cols must be in 1..{MAX_DIMENSION}")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    rows, cols, _, _ = _WINSIZE.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size)))
    return rows, cols


def make_controlling(fd: int) -> None:
    """In the child: a new session whose controlling terminal is ``fd``.

    credentials(7): a session leader acquires a controlling terminal with
    TIOCSCTTY; setsid first, since the launcher's session has none to give.
    """
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
