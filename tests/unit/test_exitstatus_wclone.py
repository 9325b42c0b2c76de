"""The mydocker-c tutorial's open question: why does ``waitpid(pid, __WCLONE)``
fail for the container?

wait(2): "__WCLONE: Wait for 'clone' children only ... A 'clone' child is one
which delivers no signal, or a signal other than SIGCHLD to its parent upon
termination."  The kernel's ``eligible_child()`` skips a child whose exit
signal is SIGCHLD when ``__WCLONE`` is given, so the call finds no child and
answers ECHILD.  Our containers are cloned with SIGCHLD as their exit signal
(``runtime.namespaces.clone_flags``), exactly like a fork(), so a plain wait
or the pidfd is the right way to reap them.
"""

from __future__ import annotations

import ctypes
import os

import pytest

from runtime.exitstatus import ExitStatus, from_wait_status

# <linux/wait.h>: #define __WCLONE 0x80000000.  waitpid()'s options are a C
# int, so the bit pattern is the int's most negative value.
WCLONE = ctypes.c_int(0x80000000).value


def test_wclone_is_the_sign_bit() -> None:
    assert WCLONE == -(2**31)
    assert WCLONE & 0xFFFFFFFF == 0x80000000


def test_waitpid_wclone_gives_echild_for_a_sigchld_child_and_plain_wait_works() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(7)
    try:
        with pytest.raises(ChildProcessError):  # ECHILD
            os.waitpid(pid, WCLONE)
    finally:
        # The child is still there to be reaped by an ordinary wait.
        reaped, status = os.waitpid(pid, 0)
    assert reaped == pid
    assert from_wait_status(status) == ExitStatus(exit_code=7)


def test_wall_reaps_it_too() -> None:
    # __WALL ("wait for all children, regardless of type") is the other way out.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(5)
    wall = 0x40000000  # <linux/wait.h>
    reaped, status = os.waitpid(pid, wall)
    assert reaped == pid
    assert from_wait_status(status) == ExitStatus(exit_code=5)
