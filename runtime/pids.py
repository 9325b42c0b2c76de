"""A process named for good: its pid together with its start time.

A pid alone is reused once its process is gone and reaped; the pair
``(pid, start time)`` is not, because a later process with the same pid
starts later (``/proc/PID/stat`` field 22, proc(5)).  Every use of a
container's pid from outside the launcher (which holds pidfds) goes through
here:

    same_process(pid, start)   is the process with this pid still that one?
    open_pidfd(pid, start)     a pidfd for it, checked after opening, so the
                               pidfd cannot name a later process
    kill_orphan(pid, start)    SIGKILL through such a pidfd
    write_pidfile / read_pidfile
                               ``run/<id>.pid`` (runtime/rundir.py): ``"PID
                               STARTTIME"``, written by the launcher right
                               after the go byte (before the joined byte,
                               without which the child runs nothing of the
                               command), so a container can be found even
                               when the launcher died before the API heard
                               of it; removed once the child is reaped
"""

from __future__ import annotations

import os
import signal

from runtime.procfs import process_start_time


def same_process(pid: int | None, start_time: int | None) -> bool:
    if pid is None or start_time is None:
        return False
    return process_start_time(pid) == start_time


def open_pidfd(pid: int | None, start_time: int | None) -> int | None:
    """A pidfd for the process ``(pid, start_time)``, or None when it is gone.

    pidfd_open(2) first, then the start time: if the pid had been reused
    before the open, the start time read afterwards differs; if it is reused
    after, the pidfd still names the process we checked (it never follows a
    pid to a new process)."""
    if pid is None or start_time is None or pid <= 0:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    if process_start_time(pid) != start_time:
        os.close(pidfd)
        return None
    return pidfd


def kill_orphan(pid: int | None, start_time: int | None) -> bool:
    """SIGKILL the process ``(pid, start_time)`` if it still exists.

    For a container whose launcher died: it was PID 1 of its PID namespace,
    so its death kills every process of the namespace (pid_namespaces(7)).
    Returns whether a signal was sent."""
    pidfd = open_pidfd(pid, start_time)
    if pidfd is None:
        return False
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)
    return True


def write_pidfile(path: str, pid: int, start_time: int | None) -> None:
    """One write(2) of a few bytes: a reader sees the file empty or whole
    (``read_pidfile`` takes an empty one for none); os.open and os.write,
    no Python file object on the launch's path."""
    data = f"{pid} {start_time if start_time is not None else -1}\n".encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def remove_pidfile(path: str) -> None:
    """Once the process is reaped (or buried): the record says the rest."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_pidfile(path: str) -> tuple[int, int] | None:
    """``(pid, start_time)`` from a pid file; None when absent or unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            fields = f.read().split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(fields) != 2 or not all(f.lstrip("-").isdigit() for f in fields):
        return None
    pid, start_time = int(fields[0]), int(fields[1])
    if pid <= 0 or start_time < 0:
        return None
    return pid, start_time
