"""What the launcher answers and announces: the replies and the events of
the protocol (protocol.py maps the wire format and holds the requests).

    ErrorKind, EntryKind     why a request was refused; what an entry is
    Reply                    the base of every ``ok`` reply:
      Done, HelloReply, Launched (ExecError, LaunchTimeline), KillManyReply, StatsReply,
      ListReply (EntryInfo, ExitStatus, Results)
    ErrorReply               a refusal: its ErrorKind, the sentence, the errno
    encode_reply             a reply as the line that carries it
    ExitEvent (Event)        an entry has exited; decode_event reads one

Each class writes and reads its own JSON form (``to_wire`` / ``from_wire``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.launcher.framing import encode
from runtime.launchtrace import LaunchTimeline
from runtime.spec import Status

Wire = dict[str, Any]


class ErrorKind(enum.Enum):
    """Why the launcher refused a request; the client maps each onto one of
    the runtime's exceptions (client.py, ``ERRORS``)."""

    NOT_FOUND = "not_found"  # no entry with that id
    INVALID_STATE = "invalid_state"  # exists, but not in a state for this op
    #: The op is unknown: the launcher predates it (launchers outlive API
    #: upgrades).  Its only use, and the wire name launchers have always sent.
    INVALID = "invalid"
    FAILED = "failed"  # the op ran and failed (``errno`` when an OSError said why)


class EntryKind(enum.StrEnum):
    CONTAINER = "container"
    EXEC = "exec"


# -- replies ------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    def to_wire(self) -> Wire:
        return {}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> Reply:
        return cls()


@dataclass(frozen=True)
class Done(Reply):
    """The empty reply of kill, write, close_stdin, resize and ack."""


@dataclass(frozen=True)
class HelloReply(Reply):
    version: int
    pid: int

    def to_wire(self) -> Wire:
        return {"version": self.version, "pid": self.pid}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> HelloReply:
        return cls(int(message["version"]), int(message["pid"]))


@dataclass(frozen=True)
class PoolReply(Reply):
    """The warm pool's state (runtime/launcher/pool.py ``PoolStats``)."""

    ready: int
    filling: int
    hits: int
    misses: int
    rss_bytes: tuple[int, ...] = ()
    fds: tuple[int, ...] = ()

    def to_wire(self) -> Wire:
        return {
            "ready": self.ready,
            "filling": self.filling,
            "hits": self.hits,
            "misses": self.misses,
            "rss_bytes": list(self.rss_bytes),
            "fds": list(self.fds),
        }

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> PoolReply:
        return cls(
            int(message["ready"]),
            int(message["filling"]),
            int(message["hits"]),
            int(message["misses"]),
            tuple(int(v) for v in message.get("rss_bytes", ())),
            tuple(int(v) for v in message.get("fds", ())),
        )


@dataclass(frozen=True)
class ExecError:
    """A set-up step that failed before execve (runtime/child.py, ``report``)."""

    step: str
    errno: int
    message: str
    exit_code: int

    def to_wire(self) -> Wire:
        return {
            "step": self.step,
            "errno": self.errno,
            "message": self.message,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_wire(cls, message: Mapping[str, Any] | None) -> ExecError | None:
        if message is None:
            return None
        return cls(
            str(message.get("step", "setup")),
            int(message.get("errno", 0)),
            str(message.get("message", "setup failed")),
            int(message.get("exit_code", 125)),
        )


def _exec_error_wire(error: ExecError | None) -> Wire | None:
    return None if error is None else error.to_wire()


@dataclass(frozen=True)
class Launched(Reply):
    """A create, start or exec: the process, and whether its execve happened."""

    pid: int
    pid_start_time: int | None
    started_at: str | None = None
    exec_error: ExecError | None = None
    #: The launcher's stamps of this op (runtime/launchtrace.py); optional:
    #: launchers before it send none, and execs have none.
    timeline: LaunchTimeline | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {
            "pid": self.pid,
            "pid_start_time": self.pid_start_time,
            "started_at": self.started_at,
            "exec_error": _exec_error_wire(self.exec_error),
        }
        if self.timeline is not None:
            wire["timeline"] = self.timeline.to_wire()
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> Launched:
        # A start's reply from launchers before this one had no pid.
        return cls(
            int(message.get("pid", 0)),
            message.get("pid_start_time"),
            message.get("started_at"),
            ExecError.from_wire(message.get("exec_error")),
            LaunchTimeline.from_wire(message.get("timeline")),
        )


@dataclass(frozen=True)
class KillManyReply(Reply):
    killed: tuple[str, ...]
    not_running: tuple[str, ...]

    def to_wire(self) -> Wire:
        return {"killed": list(self.killed), "not_running": list(self.not_running)}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> KillManyReply:
        return cls(tuple(message["killed"]), tuple(message["not_running"]))


@dataclass(frozen=True)
class StatsReply(Reply):
    """A running container's cgroup counters (``None``: not measured)."""

    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    cpu_seconds: float | None = None
    pids: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_bytes": self.memory_bytes,
            "memory_peak_bytes": self.memory_peak_bytes,
            "cpu_seconds": self.cpu_seconds,
            "pids": self.pids,
        }

    def to_wire(self) -> Wire:
        return {"stats": self.as_dict()}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> StatsReply:
        stats = message["stats"]
        return cls(
            stats.get("memory_bytes"),
            stats.get("memory_peak_bytes"),
            stats.get("cpu_seconds"),
            stats.get("pids"),
        )


@dataclass(frozen=True)
class Results:
    """What a container's run took and why it ended (containers only)."""

    oom_killed: bool | None = None
    timed_out: bool = False
    output_truncated: bool = False
    cpu_seconds: float | None = None
    memory_peak_bytes: int | None = None
    wall_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "oom_killed": self.oom_killed,
            "timed_out": self.timed_out,
            "output_truncated": self.output_truncated,
            "cpu_seconds": self.cpu_seconds,
            "memory_peak_bytes": self.memory_peak_bytes,
            "wall_seconds": self.wall_seconds,
        }

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> Results:
        return cls(
            message.get("oom_killed"),
            bool(message.get("timed_out", False)),
            bool(message.get("output_truncated", False)),
            message.get("cpu_seconds"),
            message.get("memory_peak_bytes"),
            message.get("wall_seconds"),
        )


@dataclass(frozen=True)
class ExitStatus:
    """How an entry ended, as the launcher keeps it until the ``ack``."""

    exit_code: int
    signal: str | None
    finished_at: str
    results: Results | None = None  # containers only

    def to_wire(self) -> Wire:
        wire: Wire = {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "finished_at": self.finished_at,
        }
        if self.results is not None:
            wire["results"] = self.results.as_dict()
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> ExitStatus:
        results = message.get("results")
        return cls(
            int(message["exit_code"]),
            message.get("signal"),
            str(message["finished_at"]),
            None if results is None else Results.from_wire(results),
        )


@dataclass(frozen=True)
class EntryInfo:
    """One of the launcher's entries, as ``list`` reports it."""

    id: str
    kind: EntryKind
    container: str | None  # the container an exec runs in
    pid: int
    pid_start_time: int | None
    state: Status
    started_at: str | None
    exec_error: ExecError | None
    exit: ExitStatus | None

    def to_wire(self) -> Wire:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "container": self.container,
            "pid": self.pid,
            "pid_start_time": self.pid_start_time,
            "state": self.state,
            "started_at": self.started_at,
            "exec_error": _exec_error_wire(self.exec_error),
            "exit": None if self.exit is None else self.exit.to_wire(),
        }

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> EntryInfo:
        exit_ = message.get("exit")
        return cls(
            str(message["id"]),
            EntryKind(message.get("kind", EntryKind.CONTAINER)),
            message.get("container"),
            int(message["pid"]),
            message.get("pid_start_time"),
            Status(message["state"]),
            message.get("started_at"),
            ExecError.from_wire(message.get("exec_error")),
            None if exit_ is None else ExitStatus.from_wire(exit_),
        )


@dataclass(frozen=True)
class ListReply(Reply):
    containers: tuple[EntryInfo, ...]

    def to_wire(self) -> Wire:
        return {"containers": [entry.to_wire() for entry in self.containers]}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> ListReply:
        return cls(tuple(EntryInfo.from_wire(entry) for entry in message["containers"]))


@dataclass(frozen=True)
class ErrorReply:
    kind: ErrorKind
    error: str
    errno: int | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"ok": False, "kind": self.kind.value, "error": self.error}
        if self.errno is not None:
            wire["errno"] = self.errno  # lets the API tell a full disk (ENOSPC) apart
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> ErrorReply:
        try:
            kind = ErrorKind(message.get("kind"))
        except ValueError:
            kind = ErrorKind.FAILED
        return cls(kind, str(message.get("error", "launcher error")), message.get("errno"))


def encode_reply(req: int, reply: Reply | ErrorReply) -> bytes:
    if isinstance(reply, ErrorReply):
        return encode({"req": req, **reply.to_wire()})
    return encode({"req": req, "ok": True, **reply.to_wire()})


# -- events -------------------------------------------------------------------
@dataclass(frozen=True)
class ExitEvent:
    """An entry has exited (sent to every client; kept until its ``ack``)."""

    id: str
    kind: EntryKind
    exit: ExitStatus

    def to_wire(self) -> Wire:
        return {"event": "exit", "id": self.id, "kind": self.kind.value, **self.exit.to_wire()}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> ExitEvent:
        kind = EntryKind(message.get("kind", EntryKind.CONTAINER))
        return cls(str(message["id"]), kind, ExitStatus.from_wire(message))


Event = ExitEvent


def decode_event(message: Mapping[str, Any]) -> Event | None:
    """The event a message carries; None for one this side does not know."""
    if message.get("event") == "exit":
        return ExitEvent.from_wire(message)
    return None
