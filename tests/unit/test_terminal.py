"""Window sizes on a pty, the pty's flags, cgroup membership parsing."""

from __future__ import annotations

import os
import socket

import pytest

from runtime import procfs, terminal


def test_winsize_round_trip() -> None:
    master, slave = terminal.open_pty()
    try:
        assert not os.get_inheritable(master) and not os.get_inheritable(slave)
        assert os.isatty(slave) and os.ttyname(slave).startswith("/dev/pts/")
        terminal.set_winsize(master, 33, 91)
        assert terminal.get_winsize(slave) == (33, 91)
        with pytest.raises(ValueError, match="rows and cols"):
            terminal.set_winsize(master, 0, 80)
    finally:
        os.close(master)
        os.close(slave)


def test_cgroup_membership_parsing(tmp_path: os.PathLike[str]) -> None:
    ours = procfs.cgroups("self")
    assert ours, "every process is in some cgroup"
    # The same process is never elsewhere than itself.
    assert procfs.cgroup_procs_to_join(os.getpid()) == []
    for path in procfs.cgroup_mounts().values():
        assert os.path.isdir(path)


def test_the_master_travels_over_the_console_socket() -> None:
    ours, theirs = socket.socketpair()
    slave = terminal.open_console(theirs.fileno(), (12, 34))
    master = terminal.receive_master(ours)
    try:
        assert master is not None
        assert terminal.get_winsize(slave) == (12, 34)
        os.write(slave, b"ping\n")
        # Through the line discipline; a read may return part of it (once seen
        # under load: b"ping" first, the "\r\n" after).
        got = b""
        while not got.endswith(b"\n") and len(got) < 100:
            chunk = os.read(master, 100)
            assert chunk, got
            got += chunk
        assert got == b"ping\r\n"
    finally:
        for fd in (slave, master):
            if fd is not None:
                os.close(fd)
        theirs.close()
    assert terminal.receive_master(ours) is None  # EOF: the peer is gone
    ours.close()
