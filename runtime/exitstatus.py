"""Decode how a process ended, once, for everybody.

A container ends either by exiting (``exit_code`` is its status) or by a
signal (``exit_code`` is ``128 + signo`` as a shell reports it, and
``signal`` names the signal).  Both wait(2)'s status word and waitid(2)'s
``si_code``/``si_status`` pair are decoded here and nowhere else.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    signal: str | None = None


def signal_name(signo: int) -> str:
    """``SIGTERM``; real-time signals as kill(1) lists them, ``SIGRTMIN+3``."""
    try:
        return signal.Signals(signo).name
    except ValueError:
        pass
    if signal.SIGRTMIN < signo < signal.SIGRTMAX:
        return f"SIGRTMIN+{signo - signal.SIGRTMIN}"
    return f"SIG{signo}"


def from_waitid(si_code: int, si_status: int) -> ExitStatus:
    """From waitid(2)'s siginfo: CLD_EXITED carries the status, CLD_KILLED and
    CLD_DUMPED carry the signal number."""
    if si_code == os.CLD_EXITED:
        return ExitStatus(exit_code=si_status)
    if si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return ExitStatus(exit_code=128 + si_status, signal=signal_name(si_status))
    raise ValueError(f"not a termination: si_code={si_code}")


def from_wait_status(status: int) -> ExitStatus:
    """From a wait(2) status word (WIFEXITED / WIFSIGNALED)."""
    if os.WIFEXITED(status):
        return ExitStatus(exit_code=os.WEXITSTATUS(status))
    if os.WIFSIGNALED(status):
        signo = os.WTERMSIG(status)
        return ExitStatus(exit_code=128 + signo, signal=signal_name(signo))
    raise ValueError(f"not a termination: status={status:#x}")
