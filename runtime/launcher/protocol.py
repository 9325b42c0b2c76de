"""The launcher's wire format: one JSON object per line, over a unix socket.

Every message has one frozen dataclass here, and its JSON form is written
and read in that class (``to_wire`` / ``from_wire``) and nowhere else.

Requests carry ``"req"`` (a number chosen by the client; 0: nobody waits
for the reply) and ``"op"``.  The reply carries the same ``"req"`` and
either ``"ok": true`` with the op's results or ``"ok": false`` with
``"error"`` (a sentence), ``"kind"`` (``ErrorKind``) and, when an OSError
caused it, ``"errno"``.  Events carry ``"event"`` and go to every client.

ops (request class -> reply class, wire keys):
    Hello       hello                        -> HelloReply {version, pid}
    Create      create {id, spec, stdout, stderr, start, tty_size, pidfile}
                                             -> Launched {pid, pid_start_time, started_at,
                                                          exec_error}
                                                (after execve when ``start``)
    Start       start {id}                   -> Launched (after execve)
    Exec        exec {id, container, spec, stdout, stderr, tty_size}
                                             -> Launched (after execve)
    Kill        kill {id, signal}            -> Done {}
    KillMany    kill_many {ids, signal}      -> KillManyReply {killed, not_running}
                (each as ``kill``; not running is listed, not an error;
                launchers before it answer ErrorKind.INVALID, "unknown op")
    Write       write {id, data}             -> Done   data (base64) to the pty or stdin pipe
    CloseStdin  close_stdin {id}             -> Done   EOF: pipe closed once drained; ^D on a tty
    Resize      resize {id, rows, cols}      -> Done   TIOCSWINSZ on the pty master
    Stats       stats {id}                   -> StatsReply {stats: {memory_bytes,
                                                memory_peak_bytes, cpu_seconds, pids}}
                                                (ErrorKind.INVALID_STATE unless running)
    List        list                         -> ListReply {containers: [EntryInfo, ...]}
    Ack         ack {id}                     -> Done   the client recorded the exit: forget it
errors:
    ErrorReply  {kind: ErrorKind, error, errno?}
events:
    ExitEvent   exit {id, kind, exit_code, signal, finished_at, results?}
                kind: EntryKind ("container" or "exec"); results (containers only): Results

The lines themselves: framing.py.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

from runtime.launcher.framing import encode

VERSION = 2

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


class RequestError(Exception):
    """A refusal with its kind: the launcher raises it, the reply carries it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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

    def to_wire(self) -> Wire:
        return {
            "pid": self.pid,
            "pid_start_time": self.pid_start_time,
            "started_at": self.started_at,
            "exec_error": _exec_error_wire(self.exec_error),
        }

    @classmethod
    def from_wire(cls, message: Mapping[str, Any]) -> Launched:
        # A start's reply from launchers before this one had no pid.
        return cls(
            int(message.get("pid", 0)),
            message.get("pid_start_time"),
            message.get("started_at"),
            ExecError.from_wire(message.get("exec_error")),
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
    state: str  # "created", "running" or "exited"
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
            str(message["state"]),
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


# -- requests -----------------------------------------------------------------
R = TypeVar("R", bound=Reply)


@dataclass(frozen=True)
class Request(Generic[R]):
    """An op; ``OP`` is its wire name, ``REPLY`` the class of its answer."""

    OP: ClassVar[str]
    REPLY: ClassVar[type[Reply]]

    def to_wire(self) -> Wire:
        return {"op": self.OP}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Request[Any]:
        return cls()

    def reply(self, message: Mapping[str, Any]) -> R:
        """This op's reply, from an ``ok`` message."""
        return cast(R, self.REPLY.from_wire(message))


@dataclass(frozen=True)
class Hello(Request[HelloReply]):
    OP = "hello"
    REPLY = HelloReply


@dataclass(frozen=True)
class List(Request[ListReply]):
    OP = "list"
    REPLY = ListReply


def _tty_size(value: Any) -> tuple[int, int] | None:
    """A message's ``tty_size`` (``[rows, cols]`` or null)."""
    if not value:
        return None
    return int(value[0]), int(value[1])


def _tty_size_wire(value: tuple[int, int] | None) -> list[int] | None:
    return None if value is None else list(value)


@dataclass(frozen=True)
class Create(Request[Launched]):
    """Clone a container; ``spec`` is runtime/spec.py's ``to_dict`` form of a
    ContainerSpec (the launcher decodes it)."""

    OP = "create"
    REPLY = Launched
    id: str
    spec: Mapping[str, Any]
    stdout: str
    stderr: str
    start: bool = True
    tty_size: tuple[int, int] | None = None
    pidfile: str | None = None

    def to_wire(self) -> Wire:
        return {
            "op": self.OP,
            "id": self.id,
            "spec": self.spec,
            "start": self.start,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "tty_size": _tty_size_wire(self.tty_size),
            "pidfile": self.pidfile,
        }

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Create:
        return cls(
            message["id"],
            message["spec"],
            message["stdout"],
            message["stderr"],
            bool(message.get("start", True)),
            _tty_size(message.get("tty_size")),
            message.get("pidfile"),
        )


@dataclass(frozen=True)
class Exec(Request[Launched]):
    """Run a process in a running container; ``spec``: an ExecSpec's ``to_dict``."""

    OP = "exec"
    REPLY = Launched
    id: str
    container: str
    spec: Mapping[str, Any]
    stdout: str
    stderr: str
    tty_size: tuple[int, int] | None = None

    def to_wire(self) -> Wire:
        return {
            "op": self.OP,
            "id": self.id,
            "container": self.container,
            "spec": self.spec,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "tty_size": _tty_size_wire(self.tty_size),
        }

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Exec:
        return cls(
            message["id"],
            message["container"],
            message["spec"],
            message["stdout"],
            message["stderr"],
            _tty_size(message.get("tty_size")),
        )


@dataclass(frozen=True)
class _ById(Request[R]):
    """An op on one entry, named by its id and nothing else."""

    id: str

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Request[Any]:
        return cls(message["id"])


@dataclass(frozen=True)
class Start(_ById[Launched]):
    OP = "start"
    REPLY = Launched


@dataclass(frozen=True)
class CloseStdin(_ById[Done]):
    OP = "close_stdin"
    REPLY = Done


@dataclass(frozen=True)
class Stats(_ById[StatsReply]):
    OP = "stats"
    REPLY = StatsReply


@dataclass(frozen=True)
class Ack(_ById[Done]):
    OP = "ack"
    REPLY = Done


@dataclass(frozen=True)
class Kill(Request[Done]):
    OP = "kill"
    REPLY = Done
    id: str
    signal: int

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id, "signal": self.signal}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Kill:
        return cls(message["id"], int(message["signal"]))


@dataclass(frozen=True)
class KillMany(Request[KillManyReply]):
    OP = "kill_many"
    REPLY = KillManyReply
    ids: tuple[str, ...]
    signal: int

    def to_wire(self) -> Wire:
        return {"op": self.OP, "ids": list(self.ids), "signal": self.signal}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> KillMany:
        return cls(tuple(message["ids"]), int(message["signal"]))


@dataclass(frozen=True)
class Write(Request[Done]):
    OP = "write"
    REPLY = Done
    id: str
    data: bytes

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id, "data": base64.b64encode(self.data).decode()}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Write:
        return cls(message["id"], base64.b64decode(message["data"], validate=True))


@dataclass(frozen=True)
class Resize(Request[Done]):
    OP = "resize"
    REPLY = Done
    id: str
    rows: int
    cols: int

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id, "rows": self.rows, "cols": self.cols}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Resize:
        return cls(message["id"], int(message["rows"]), int(message["cols"]))


#: Every op by its wire name.
OPS: dict[str, type[Request[Any]]] = {}
for _op in (
    Hello,
    List,
    Create,
    Start,
    Exec,
    Kill,
    KillMany,
    Write,
    CloseStdin,
    Resize,
    Stats,
    Ack,
):
    OPS[_op.OP] = _op


def decode_request(message: Mapping[str, Any]) -> Request[Any]:
    """The op a request names; RequestError(INVALID) for one we do not know,
    KeyError/ValueError/TypeError for a malformed one."""
    op = OPS.get(message.get("op"))  # type: ignore[arg-type]
    if op is None:
        raise RequestError(ErrorKind.INVALID, f"unknown op {message.get('op')!r}")
    return op.decode(message)


def encode_request(req: int, op: Request[Any]) -> bytes:
    return encode({**op.to_wire(), "req": req})


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
