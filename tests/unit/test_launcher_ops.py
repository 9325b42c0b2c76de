"""The launcher's ``kill_many`` op without a clone: entries over real
``sleep`` children of the test (a pidfd is all the op uses), in each state
the op must tell apart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

from runtime.launcher import framing, protocol, server, transport
from runtime.launcher.entry import Entry, Process


@pytest.fixture
def launcher() -> Iterator[server.Launcher]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    launcher = server.Launcher(listener)
    yield launcher
    launcher.selector.close()
    listener.close()


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(4)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def entry(launcher: server.Launcher, name: str, proc: subprocess.Popen[bytes]) -> Entry:
    process = Process(
        pid=proc.pid,
        pidfd=os.pidfd_open(proc.pid),
        pid_start_time=None,
        sync_write=-1,
        error_read=-1,
    )
    e = Entry(id=name, process=process, state="running")
    launcher.entries[name] = e
    return e


def kill_many(launcher: server.Launcher, ids: list[str], signo: int) -> dict[str, object]:
    op = protocol.KillMany(tuple(ids), signo)
    return launcher.ops.kill_many(None, 1, op).to_wire()  # type: ignore[arg-type]


def test_signals_the_running_and_lists_the_rest(
    launcher: server.Launcher, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    a, b, created, exec_proc = sleepers
    for name, proc in (("a", a), ("b", b), ("created", created), ("exec", exec_proc)):
        entry(launcher, name, proc)
    launcher.entries["created"].state = "created"  # waiting for its go byte
    launcher.entries["exec"].kind = protocol.EntryKind.EXEC  # not a container
    reply = kill_many(launcher, ["a", "created", "exec", "nosuch", "b"], signal.SIGTERM)
    assert reply == {"killed": ["a", "b"], "not_running": ["created", "exec", "nosuch"]}
    assert a.wait(10) == -signal.SIGTERM and b.wait(10) == -signal.SIGTERM
    assert created.poll() is None and exec_proc.poll() is None


def test_a_process_reaped_elsewhere_is_not_running(
    launcher: server.Launcher, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    dead, alive = sleepers[:2]
    entry(launcher, "dead", dead)
    entry(launcher, "alive", alive)
    dead.kill()
    dead.wait()  # reaped: its pidfd now answers ESRCH
    reply = kill_many(launcher, ["dead", "alive"], signal.SIGKILL)
    assert reply == {"killed": ["alive"], "not_running": ["dead"]}
    assert alive.wait(10) == -signal.SIGKILL


def test_an_entry_whose_exit_is_recorded_is_not_signalled(
    launcher: server.Launcher, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    e = entry(launcher, "a", sleepers[0])
    e.state = "exited"
    assert kill_many(launcher, ["a"], signal.SIGKILL) == {"killed": [], "not_running": ["a"]}
    assert sleepers[0].poll() is None


def test_an_unknown_op_answers_what_the_client_falls_back_on(launcher: server.Launcher) -> None:
    """A launcher without ``kill_many`` answers like this; the client turns
    it into UnknownOp (runtime/launcher/client.py)."""
    ours, theirs = socket.socketpair()
    try:
        launcher.handle(transport.Client(ours), {"req": 7, "op": "kill_mony"})
        reply = framing.LineReader().feed(theirs.recv(4096))
    finally:
        ours.close()
        theirs.close()
    assert reply == [{"req": 7, "ok": False, "kind": "invalid", "error": "unknown op 'kill_mony'"}]
