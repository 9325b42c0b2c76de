"""Pseudo-terminals and stdin pipes for interactive containers.

A container (or exec) with ``tty`` gets the slave side of a pty as fds
0/1/2 and as its controlling terminal; the launcher keeps the master, drains
it into ``stdout.log`` (the single record of the output, replayed on attach)
and writes attach input into it.  With ``stdin`` but no ``tty`` the process
reads a pipe whose write end the launcher keeps.

Where the pty comes from: today the launcher opens it on the host's devpts
(``os.openpty``) before the clone.  Once containers get their own ``/dev``
with a new devpts instance, the child can open ``/dev/pts/ptmx`` there and
send the master back over a unix socketpair (SCM_RIGHTS, unix(7)); the
launcher side only needs a master fd either way.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from dataclasses import dataclass

# struct winsize {unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel;} (tty_ioctl(4))
_WINSIZE = struct.Struct("HHHH")
MAX_DIMENSION = 0xFFFF


@dataclass(frozen=True)
class Stdio:
    """The fds a child gets as 0/1/2, and the launcher's ends.

    ``master`` is the pty master (tty), ``stdin_write`` the write end of the
    stdin pipe (stdin without tty), ``log_fd`` the stdout log the master is
    drained into; each is -1 when absent.  ``child_fds`` are the launcher's
    copies of the child's fds, closed once the child exists.
    """

    stdin: int
    stdout: int
    stderr: int
    tty: int
    master: int
    stdin_write: int
    log_fd: int
    child_fds: tuple[int, ...]


def open_pty() -> tuple[int, int]:
    """``(master, slave)`` on the host's devpts, both close-on-exec."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    return master, slave


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
