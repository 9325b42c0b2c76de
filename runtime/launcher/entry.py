"""One child of the launcher, from clone (or fork, for an exec) until the ack.

    Entry        id, kind, state, the launch's reply and the exit status
    ├── Process  the child: pid, pidfd, the sync and error pipes (spawn.py, reaper.py)
    ├── Io       the pty master, the stdin pipe, input not read yet (ptyio.py)
    ├── Limiting limits, cgroup, timers, why it was killed (watch.py, reaper.py)
    └── Logs     the log files, their inotify watches and time indexes (watch.py)

Mutable on purpose: the loop updates an entry as its child goes through
its life; ``info()`` is the frozen view the protocol reports.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime import cgroups, logindex
from runtime.launcher.messages import EntryInfo, EntryKind, ExecError, ExitStatus
from runtime.launchtrace import Stamps
from runtime.spec import ContainerSpec, Limits, Status

if TYPE_CHECKING:
    from runtime.launcher.transport import Client

CREATED, RUNNING, EXITED = Status.created, Status.running, Status.exited


@dataclass
class Process:
    pid: int
    pidfd: int
    pid_start_time: int | None
    sync_write: int
    error_read: int
    error_buffer: bytearray = field(default_factory=bytearray)
    #: The go byte went out at clone (the child builds its root while the
    #: launcher joins it to the cgroups); ``release`` then sends only the
    #: joined byte.
    go_sent: bool = False
    devices_cgroup: str | None = None
    #: Its pid file (runtime/pids.py), removed once it is reaped (reaper.py).
    pidfile: str | None = None
    #: The stamps of the op in progress, for its reply (runtime/launchtrace.py).
    stamps: Stamps = field(default_factory=Stamps)
    #: Run once the joined byte went (``Spawner.release``): a pooled bridge
    #: child's host end named (claim.py ``plug``).
    after_joined: Callable[[], None] | None = None


@dataclass
class Io:
    """Interactive plumbing: the pty master (tty), the write end of the stdin
    pipe (stdin without tty), the stdout log the master is drained into."""

    master: int = -1
    #: With a tty, until the child has sent the pty's master over it.
    console: socket.socket | None = None
    pending_size: tuple[int, int] | None = None
    stdin_write: int = -1
    log_fd: int = -1
    master_readable: bool = False
    pending_input: bytearray = field(default_factory=bytearray)
    close_input: bool = False

    @property
    def input_fd(self) -> int:
        return self.master if self.master >= 0 else self.stdin_write


@dataclass
class Limiting:
    """Limits and accounting (containers only)."""

    limits: Limits = field(default_factory=Limits)
    cgroup: cgroups.Cgroup | None = None
    released_at: float | None = None  # time.monotonic() at the go byte
    deadline: float | None = None  # time.monotonic() when timeout_seconds runs out
    timed_out: bool = False
    output_truncated: bool = False
    killed: bool = False


@dataclass
class Logs:
    paths: tuple[str, str] = ("", "")
    watches: list[int] = field(default_factory=list)  # inotify wds on the logs
    #: The time index of each log file (runtime/logindex.py).
    indexes: list[logindex.IndexWriter] = field(default_factory=list)


@dataclass(eq=False)
class Entry:
    id: str
    process: Process
    kind: EntryKind = EntryKind.CONTAINER
    state: Status = CREATED
    #: The container a spec'd exec runs in (execs only).
    container: str | None = None
    spec: ContainerSpec | None = None
    exec_error: ExecError | None = None
    #: The client and req waiting for the launch's reply (after execve).
    pending: tuple[Client, int] | None = None
    started_at: str | None = None
    exit: ExitStatus | None = None
    io: Io = field(default_factory=Io)
    limiting: Limiting = field(default_factory=Limiting)
    logs: Logs = field(default_factory=Logs)

    def info(self) -> EntryInfo:
        return EntryInfo(
            self.id,
            self.kind,
            self.container,
            self.process.pid,
            self.process.pid_start_time,
            self.state,
            self.started_at,
            self.exec_error,
            self.exit,
        )
