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
                                                          exec_error, timeline?}
                                                (timeline: the launcher's stamps,
                                                runtime/launchtrace.py; optional)
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
    Pool        pool {templates?: [{size, spec}, ...]}
                                             -> PoolReply {ready, filling, hits, misses,
                                                rss_bytes, fds}  (the warm pool,
                                                launcher/pool.py; without templates:
                                                its state only)
    Ack         ack {id}                     -> Done   the client recorded the exit: forget it
errors:
    ErrorReply  {kind: ErrorKind, error, errno?}
events:
    ExitEvent   exit {id, kind, exit_code, signal, finished_at, results?}
                kind: EntryKind ("container" or "exec"); results (containers only): Results

Here: the requests (``Request``, one subclass per op, ``OPS``, ``decode_request``,
``encode_request``) and ``RequestError``.  The replies, ``ErrorKind``,
``EntryKind`` and the events are in messages.py, and importable from here too.
The lines themselves: framing.py.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

from runtime.launcher.framing import encode
from runtime.launcher.messages import (
    Done,
    EntryInfo,
    EntryKind,
    ErrorKind,
    ErrorReply,
    Event,
    ExecError,
    ExitEvent,
    ExitStatus,
    HelloReply,
    KillManyReply,
    Launched,
    ListReply,
    PoolReply,
    Reply,
    Results,
    StatsReply,
    Wire,
    decode_event,
    encode_reply,
)

__all__ = [
    # the requests (here)
    "VERSION",
    "Ack",
    "CloseStdin",
    "Create",
    "Exec",
    "Hello",
    "Pool",
    "PoolTemplate",
    "Kill",
    "KillMany",
    "List",
    "OPS",
    "Request",
    "RequestError",
    "Resize",
    "Start",
    "Stats",
    "Write",
    "decode_request",
    "encode_request",
    # the replies and events (messages.py), so that one module names them all
    "Done",
    "EntryInfo",
    "EntryKind",
    "ErrorKind",
    "ErrorReply",
    "Event",
    "ExecError",
    "ExitEvent",
    "ExitStatus",
    "HelloReply",
    "KillManyReply",
    "Launched",
    "ListReply",
    "PoolReply",
    "Reply",
    "Results",
    "StatsReply",
    "Wire",
    "decode_event",
    "encode_reply",
]

VERSION = 2


class RequestError(Exception):
    """A refusal with its kind: the launcher raises it, the reply carries it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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


@dataclass(frozen=True)
class PoolTemplate:
    """Keep ``size`` children warm for containers like ``spec`` (a
    ContainerSpec's ``to_dict`` form)."""

    size: int
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class Pool(Request[PoolReply]):
    """Configure the warm pool (``templates``), or only read its state (None)."""

    OP = "pool"
    REPLY = PoolReply
    templates: tuple[PoolTemplate, ...] | None = None

    def to_wire(self) -> Wire:
        if self.templates is None:
            return {"op": self.OP}
        templates = [{"size": t.size, "spec": t.spec} for t in self.templates]
        return {"op": self.OP, "templates": templates}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Pool:
        templates = message.get("templates")
        if templates is None:
            return cls()
        return cls(tuple(PoolTemplate(int(t["size"]), t["spec"]) for t in templates))


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


@dataclass(frozen=True)
class Connect(Request[Done]):
    """Plug one more network into a container's namespace (``attachment``:
    an ``Attachment`` as ``spec.to_dict`` writes it)."""

    OP = "connect"
    REPLY = Done
    id: str
    attachment: Mapping[str, Any]

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id, "attachment": dict(self.attachment)}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Connect:
        return cls(message["id"], dict(message["attachment"]))


@dataclass(frozen=True)
class Disconnect(Request[Done]):
    """Unplug a network: the host end ``veth`` deleted (its peer goes with it)."""

    OP = "disconnect"
    REPLY = Done
    id: str
    veth: str

    def to_wire(self) -> Wire:
        return {"op": self.OP, "id": self.id, "veth": self.veth}

    @classmethod
    def decode(cls, message: Mapping[str, Any]) -> Disconnect:
        return cls(message["id"], str(message["veth"]))


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
    Pool,
    Connect,
    Disconnect,
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
