"""runtime.exitstatus: one decoding of how a process ended."""

from __future__ import annotations

import os
import signal

import pytest

from runtime.exitstatus import ExitStatus, from_wait_status, from_waitid, signal_name


def _fork_and_wait(body: str) -> int:
    """Fork a child that runs ``body`` (``exit N`` or ``kill SIG``); its wait status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            kind, value = body.split()
            if kind == "exit":
                os._exit(int(value))
            signo = signal.Signals[value]
            if signo != signal.SIGKILL:
                signal.signal(signo, signal.SIG_DFL)
            os.kill(os.getpid(), signo)
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_wait_status_exit(code: int) -> None:
    assert from_wait_status(_fork_and_wait(f"exit {code}")) == ExitStatus(exit_code=code)


@pytest.mark.parametrize(("name", "signo"), [("SIGKILL", 9), ("SIGTERM", 15), ("SIGUSR1", 10)])
def test_wait_status_signal_is_128_plus_n(name: str, signo: int) -> None:
    status = from_wait_status(_fork_and_wait(f"kill {name}"))
    assert status == ExitStatus(exit_code=128 + signo, signal=name)


def test_wait_status_of_a_stopped_child_is_not_a_termination() -> None:
    # 0x137f: WIFSTOPPED by SIGSTOP (wait(2)).
    with pytest.raises(ValueError, match="not a termination"):
        from_wait_status(0x137F)


def test_waitid_exited() -> None:
    assert from_waitid(os.CLD_EXITED, 3) == ExitStatus(exit_code=3, signal=None)


@pytest.mark.parametrize("code", [os.CLD_KILLED, os.CLD_DUMPED])
def test_waitid_killed_or_dumped(code: int) -> None:
    assert from_waitid(code, signal.SIGSEGV) == ExitStatus(exit_code=139, signal="SIGSEGV")


@pytest.mark.parametrize("code", [os.CLD_STOPPED, os.CLD_CONTINUED, os.CLD_TRAPPED])
def test_waitid_non_terminations_raise(code: int) -> None:
    with pytest.raises(ValueError, match="si_code"):
        from_waitid(code, 0)


def test_waitid_agrees_with_a_real_child() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(17)
    result = os.waitid(os.P_PID, pid, os.WEXITED)
    assert result is not None
    assert from_waitid(result.si_code, result.si_status) == ExitStatus(17)


def test_signal_name_known_and_unknown() -> None:
    assert signal_name(9) == "SIGKILL"
    assert signal_name(int(signal.SIGRTMIN)) == "SIGRTMIN"
    assert signal_name(int(signal.SIGRTMIN) + 1) == "SIGRTMIN+1"
    assert signal_name(200) == "SIG200"
