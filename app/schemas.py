"""Request and response models: the API's contract, and its OpenAPI schema.

``XCreate`` is what a client sends, ``XPublic`` what it gets back.  Every
constraint lives here, so a bad body gets a 422 that names the field before
the runtime sees anything.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
)

from runtime import ContainerRecord, ExecRecord
from runtime.images import Image
from runtime.images.store import NAME_PATTERN as IMAGE_NAME_PATTERN
from runtime.security import capabilities
from runtime.signals import SIGNAL_NAMES, SIGNAL_NUMBERS
from runtime.spec import (
    FRACTIONAL_LIMITS,
    LIMIT_BOUNDS,
    LIMIT_DESCRIPTIONS,
    Limits,
    Mount,
    Status,
    check_container_path,
    number,
)

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
# RFC 1123 labels: letters, digits, inner hyphens; dots between labels.
#: execve(2): one argument or "KEY=value" string may be at most MAX_ARG_STRLEN
#: (32 pages, 128 KiB) long; all of them together are bounded by a quarter of
#: the stack limit.  We cap the total lower, at 1 MiB, so no request can make
#: the service or the launcher hold more than that per container.
MAX_ARG_BYTES = 128 * 1024
MAX_ARGV_ENV_BYTES = 1024 * 1024
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def documents(**keywords: Any) -> Any:
    """JSON Schema keywords that state what a validator here checks, so that
    the OpenAPI schema promises exactly what is accepted; the validator keeps
    the check and its message (pydantic's own pattern errors say less)."""
    return Field(json_schema_extra=keywords)


#: What the validators below accept, as JSON Schema patterns.
NO_NUL = r"^[^\x00]*$"
ABSOLUTE_PATH = r"^/[^\x00]*$"
ENV_NAME = r"^[^=\x00]+$"
#: runtime.spec.check_container_path: absolute, not `/` itself, no `..`.
CONTAINER_PATH = r"^(?!/*$)(?!(.*/)?\.\.(/|$))/[^\x00]*$"
LABEL_KEY = r"^[^\x00]+$"
IMAGE_REF_PATTERN = (
    r"^((docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?(library/)?"
    r"[a-z0-9][a-z0-9_.-]{0,127}(:latest)?$"
)
#: Capabilities by name, as sent (`normalize` also takes other cases and spaces).
CAPABILITY_NAMES = [
    "ALL",
    *capabilities.CAPABILITIES,
    *(f"CAP_{c}" for c in capabilities.CAPABILITIES),
]

Argument = Annotated[str, documents(pattern=NO_NUL)]
# Keys are described by patternProperties; additionalProperties closes the
# object to the others, as the validators do.
Environment = Annotated[
    dict[Annotated[str, documents(pattern=ENV_NAME)], Annotated[str, documents(pattern=NO_NUL)]],
    documents(additionalProperties=False),
]
Labels = Annotated[
    dict[Annotated[str, documents(pattern=LABEL_KEY)], Annotated[str, documents(pattern=NO_NUL)]],
    documents(additionalProperties=False),
]
Capability = Annotated[str, documents(enum=CAPABILITY_NAMES)]
#: A signal by name or number, as runtime.signals.parse_signal takes it.
Signal = Annotated[
    Annotated[str, documents(enum=SIGNAL_NAMES)]
    | Annotated[StrictInt, documents(enum=SIGNAL_NUMBERS)],
    Field(description="Signal name (`SIGTERM`, `TERM`) or number."),
]


#: The runtime's statuses (runtime.spec.Status), as the API shows them.
ContainerStatus = Status


class TtySize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Annotated[int, Field(ge=1, le=65535)]
    cols: Annotated[int, Field(ge=1, le=65535)]

    def pair(self) -> tuple[int, int]:
        return (self.rows, self.cols)


def _check_command(command: list[str]) -> list[str]:
    for index, arg in enumerate(command):
        if "\0" in arg:
            raise ValueError(f"argument {index} contains a NUL byte")
    return command


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"invalid variable name {key!r}: empty, or has '=' or NUL")
        if "\0" in value:
            raise ValueError(f"the value of {key!r} contains a NUL byte")
    return env


def _absolute_path(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise ValueError("must be an absolute path without NUL bytes")
    return path


def _limit_type(name: str) -> type:
    """``int`` or ``float``, as the runtime takes the limit (spec.FRACTIONAL_LIMITS)."""
    return float if name in FRACTIONAL_LIMITS else int


def _bounded(name: str) -> Any:
    """A Field bounded and described as ``Limits`` declares ``name``."""
    low, high = LIMIT_BOUNDS[name]
    if name not in FRACTIONAL_LIMITS:
        low, high = int(low), int(high)
    description = LIMIT_DESCRIPTIONS[name]
    return Field(ge=low, le=high, description=f"{description} ({number(low)} to {number(high)}).")


def _limits_model(name: str, doc: str, bounded: bool, config: ConfigDict) -> type[BaseModel]:
    """A pydantic model with one optional field per ``Limits`` field, in its
    order: the limits are declared once, in runtime/spec.py."""
    fields: dict[str, Any] = {
        f.name: (
            Annotated[_limit_type(f.name) | None, _bounded(f.name)]
            if bounded
            else _limit_type(f.name) | None,
            None,
        )
        for f in dataclasses.fields(Limits)
    }
    model: type[BaseModel] = create_model(
        name, __config__=config, __doc__=doc, __module__=__name__, **fields
    )
    return model


if TYPE_CHECKING:
    # Generated below from runtime.spec.Limits; to mypy, models of unknown fields.
    LimitsCreate = BaseModel
    LimitsPublic = BaseModel
else:
    LimitsCreate = _limits_model(
        "LimitsCreate",
        "What the container may take; unset fields take the service's defaults.",
        bounded=True,
        config=ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"memory_bytes": 67108864, "pids": 64, "cpus": 0.5, "timeout_seconds": 5}
                ]
            },
        ),
    )
    LimitsPublic = _limits_model(
        "LimitsPublic",
        "The limits that applied (the request's, then the service's defaults).",
        bounded=False,
        config=ConfigDict(),
    )


def limits_public(limits: Limits) -> LimitsPublic:
    """The applied limits as the API shows them."""
    return LimitsPublic(**dataclasses.asdict(limits))


class ContainerStats(BaseModel):
    """Live counters of a running container (from its cgroup)."""

    memory_bytes: Annotated[int | None, Field(description="Memory in use now.")]
    memory_peak_bytes: Annotated[int | None, Field(description="Most memory used so far.")]
    cpu_seconds: Annotated[float | None, Field(description="User + system CPU time so far.")]
    pids: Annotated[int | None, Field(description="Processes (tasks) now.")]


def _container_path(path: str) -> str:
    try:
        check_container_path(path, "the path")
    except ValueError as err:
        raise ValueError(str(err)) from None
    return path


#: A host path, or a working directory: absolute, no NUL.
AbsolutePath = Annotated[str, AfterValidator(_absolute_path), documents(pattern=ABSOLUTE_PATH)]
#: Where a mount goes in the container (runtime.spec.check_container_path).
ContainerPath = Annotated[
    str,
    AfterValidator(_container_path),
    Field(
        description="Absolute path in the container, without `..`.",
        json_schema_extra={"pattern": CONTAINER_PATH},
    ),
]


class BindMount(BaseModel):
    """A host path shown inside the container (`docker run --volume SRC:DST[:ro]`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bind"]
    source: Annotated[AbsolutePath, Field(description="Absolute host path; must exist.")]
    target: ContainerPath
    read_only: Annotated[StrictBool, Field(description="Recursively read-only.")] = False

    def to_runtime(self) -> Mount:
        return Mount("bind", self.target, source=self.source, read_only=self.read_only)


class TmpfsMount(BaseModel):
    """A fresh, empty tmpfs (`docker run --tmpfs DST`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["tmpfs"]
    target: ContainerPath
    size_bytes: Annotated[
        int | None, Field(gt=0, description="Size cap; default half of the RAM (tmpfs(5)).")
    ] = None
    read_only: StrictBool = False

    def to_runtime(self) -> Mount:
        return Mount("tmpfs", self.target, read_only=self.read_only, size_bytes=self.size_bytes)


MountSpec = Annotated[BindMount | TmpfsMount, Field(discriminator="type")]


class ContainerCreate(BaseModel):
    """A container to run."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"command": ["sh", "-c", "hostname; ip link"], "name": "demo"}]
        },
    )

    command: Annotated[
        list[Argument],
        Field(
            min_length=1,
            description="argv of the command; `command[0]` is looked up in `PATH` "
            "inside the container when it has no slash.",
        ),
    ]
    name: Annotated[
        str | None,
        Field(pattern=NAME_PATTERN, description="Unique name; defaults to the id."),
    ] = None
    hostname: Annotated[
        str | None,
        Field(
            max_length=64,
            description="RFC 1123 hostname; defaults to the first 12 characters of the id.",
            json_schema_extra={"pattern": _HOSTNAME.pattern},
        ),
    ] = None
    env: Annotated[
        Environment,
        Field(description="Environment variables; `PATH` defaults to a sane value."),
    ] = {}
    workdir: Annotated[
        AbsolutePath | None,
        Field(
            description="Absolute working directory of the command (default `/`); "
            "created if missing."
        ),
    ] = None
    user: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9]+(:[0-9]+)?$",
            description="`uid[:gid]` in numbers to run the command as (default 0:0); "
            "the gid defaults to the uid.",
            examples=["1000:1000"],
        ),
    ] = None
    cap_add: Annotated[
        list[Capability],
        Field(
            description="Capabilities to add to Docker's default 14, by name "
            "(`NET_ADMIN` or `CAP_NET_ADMIN`); `ALL` for every one.",
        ),
    ] = []
    cap_drop: Annotated[
        list[Capability],
        Field(description="Capabilities to drop, by name; `ALL` to start from none."),
    ] = []
    seccomp: Annotated[
        Literal["default", "unconfined"],
        Field(description="`default`: the syscall filter of docs/security.md; `unconfined`: none."),
    ] = "default"
    no_new_privileges: Annotated[
        StrictBool,
        Field(description="PR_SET_NO_NEW_PRIVS: setuid bits and file capabilities do nothing."),
    ] = True
    userns: Annotated[
        StrictBool,
        Field(
            description="Run in a user namespace: container root is an unprivileged "
            "host uid (the service's --userns-range, 100000-165535 by default)."
        ),
    ] = False
    tty: Annotated[
        StrictBool,
        Field(
            description="Give the command a pseudo-terminal as stdin/stdout/stderr and "
            "controlling terminal (`TERM=xterm` unless `env` says otherwise); stderr is "
            "merged into stdout."
        ),
    ] = False
    stdin: Annotated[
        StrictBool,
        Field(
            description="Keep stdin open for `attach` (a pipe) instead of `/dev/null`; "
            "with `tty` the terminal is the stdin."
        ),
    ] = False
    tty_size: Annotated[
        TtySize | None, Field(description="Initial size of the terminal (with `tty`).")
    ] = None
    auto_remove: Annotated[
        StrictBool,
        Field(description="Remove the container (record and logs) as soon as it has exited."),
    ] = False
    labels: Annotated[
        Labels,
        Field(description="Free metadata (Docker's labels); `docker ps --filter label=` sees it."),
    ] = {}
    limits: Annotated[
        LimitsCreate | None,
        Field(description="Resource and time limits; unset ones take the service's defaults."),
    ] = None
    image: Annotated[
        str,
        Field(
            description="Image for the root filesystem: `host` (the host's `/`, read-only, "
            "with private /tmp, /run, /var/tmp), `busybox`, or an imported one.",
            json_schema_extra={"pattern": IMAGE_REF_PATTERN},
        ),
    ] = "host"
    read_only: Annotated[
        StrictBool, Field(description="Make the root filesystem read-only (no writable layer).")
    ] = False
    mounts: Annotated[
        list[MountSpec], Field(description="Bind mounts and tmpfs mounts, in order.")
    ] = []

    @field_validator("command")
    @classmethod
    def _no_nul(cls, command: list[str]) -> list[str]:
        for index, arg in enumerate(command):
            if "\0" in arg:
                raise ValueError(f"argument {index} contains a NUL byte")
            if len(arg.encode()) >= MAX_ARG_BYTES:
                raise ValueError(f"argument {index} is longer than {MAX_ARG_BYTES} bytes")
        return command

    @field_validator("cap_add", "cap_drop")
    @classmethod
    def _capability_names(cls, names: list[str]) -> list[str]:
        for name in names:
            capabilities.normalize(name)  # ValueError names the capability
        return names

    @model_validator(mode="after")
    def _argv_env_size(self) -> ContainerCreate:
        total = sum(len(arg.encode()) + 1 for arg in self.command)
        for key, value in self.env.items():
            size = len(key.encode()) + len(value.encode()) + 2
            if size >= MAX_ARG_BYTES:
                raise ValueError(f"env: {key!r} is longer than {MAX_ARG_BYTES} bytes")
            total += size
        if total > MAX_ARGV_ENV_BYTES:
            raise ValueError(
                f"command and env: {total} bytes together, more than {MAX_ARGV_ENV_BYTES}"
            )
        return self

    @field_validator("hostname")
    @classmethod
    def _rfc1123(cls, hostname: str | None) -> str | None:
        if hostname is not None and not _HOSTNAME.match(hostname):
            raise ValueError(
                "must be an RFC 1123 hostname: labels of letters, digits and inner "
                "hyphens, at most 63 characters each, joined by dots"
            )
        return hostname

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not key or "\0" in key or "\0" in value:
                raise ValueError(f"invalid label {key!r}: empty, or has a NUL byte")
        return labels


RESULT_FIELDS = (
    "oom_killed",
    "timed_out",
    "output_truncated",
    "cpu_seconds",
    "memory_peak_bytes",
    "wall_seconds",
)


class ContainerPublic(BaseModel):
    """A container as the service knows it."""

    id: Annotated[str, Field(description="64 lowercase hex digits.")]
    name: str
    status: ContainerStatus
    command: list[str]
    hostname: str
    tty: bool
    stdin: bool
    image: str
    labels: dict[str, str]
    pid: Annotated[int | None, Field(description="Host pid while it runs.")]
    exit_code: Annotated[
        int | None,
        Field(
            description="Exit status; 128+N when killed by signal N; 126/127 when the "
            "command could not be executed; null while running or when lost."
        ),
    ]
    signal: Annotated[str | None, Field(description="The signal that killed it, e.g. SIGKILL.")]
    error: Annotated[
        str | None, Field(description="Why the runtime could not run the command, if it could not.")
    ]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    limits: Annotated[LimitsPublic, Field(description="The limits that applied.")]
    oom_killed: Annotated[
        bool | None,
        Field(
            description="The kernel's OOM killer killed a process of it (the cgroup's "
            "counter, not a guess from exit code 137); null until exited or when unknown."
        ),
    ] = None
    timed_out: Annotated[
        bool | None, Field(description="Killed because `timeout_seconds` ran out.")
    ] = None
    output_truncated: Annotated[
        bool | None,
        Field(description="Killed because its output passed `output_bytes`; logs hold what fit."),
    ] = None
    cpu_seconds: Annotated[
        float | None, Field(description="User + system CPU time of all its processes.")
    ] = None
    memory_peak_bytes: Annotated[
        int | None, Field(description="Most memory it used at once (cgroup peak).")
    ] = None
    wall_seconds: Annotated[
        float | None, Field(description="Wall-clock time from start to exit.")
    ] = None

    @classmethod
    def from_record(cls, record: ContainerRecord) -> ContainerPublic:
        spec = record.spec
        return cls(
            id=record.id,
            name=record.name,
            status=record.status,
            command=list(spec.command),
            hostname=spec.hostname,
            tty=spec.tty,
            stdin=spec.stdin,
            image=spec.image,
            labels=dict(spec.labels),
            pid=record.pid if record.status != Status.exited else None,
            exit_code=record.exit_code,
            signal=record.signal,
            error=record.error,
            created_at=record.created_at,  # type: ignore[arg-type]
            started_at=record.started_at,  # type: ignore[arg-type]
            finished_at=record.finished_at,  # type: ignore[arg-type]
            limits=limits_public(spec.limits),
            **{k: record.results.get(k) for k in RESULT_FIELDS},
        )


#: The most ids one bulk kill may name (a body of ~0.7 MB of full ids).
MAX_KILL_IDS = 10_000


class ContainersKill(BaseModel):
    """Which running containers to signal (`POST /containers/kill`): the
    criteria given must all hold, and at least one (or `all`) is required."""

    model_config = ConfigDict(extra="forbid")

    labels: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=4096)]],
        Field(
            max_length=64,
            description="Each `key` (the label is set) or `key=value`, as "
            "`docker ps --filter label=`; all must hold.",
        ),
    ] = []
    name_prefix: Annotated[
        str | None, Field(min_length=1, max_length=128, description="The name starts with it.")
    ] = None
    ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]] | None,
        Field(
            max_length=MAX_KILL_IDS,
            description="Ids, names or unique id prefixes; unknown ones are listed in "
            "`not_found`, not an error.",
        ),
    ] = None
    all: Annotated[
        StrictBool,
        Field(description="Every running container (the only way to select without a filter)."),
    ] = False
    signal: Signal = "SIGKILL"


class ContainersKillResult(BaseModel):
    """What a bulk kill did."""

    signal: Annotated[str, Field(description="The signal sent, by name.")]
    killed: Annotated[list[str], Field(description="Ids of the containers signalled.")]
    not_running: Annotated[
        list[str],
        Field(description="Ids selected but not running (created, or exited meanwhile)."),
    ]
    not_found: Annotated[list[str], Field(description="The `ids` that name no container.")]


class ExecCreate(BaseModel):
    """A command to start inside a running container."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"command": ["hostname"]}, {"command": ["sh"], "tty": True}]
        },
    )

    command: Annotated[
        list[Argument], Field(min_length=1, description="argv, looked up in `PATH`.")
    ]
    tty: Annotated[
        StrictBool, Field(description="A pseudo-terminal of its own (as for containers).")
    ] = False
    stdin: Annotated[StrictBool, Field(description="Keep stdin open for attach.")] = False
    env: Annotated[Environment, Field(description="On top of the container's environment.")] = {}
    workdir: Annotated[
        AbsolutePath | None, Field(description="Absolute path; the container's workdir by default.")
    ] = None
    user: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31})?$",
            description="`name`, `uid`, `name:group` or `uid:gid` (names from the "
            "container's /etc/passwd and /etc/group).",
        ),
    ] = None
    tty_size: Annotated[
        TtySize | None, Field(description="Initial size of the terminal (with `tty`).")
    ] = None

    @field_validator("command")
    @classmethod
    def _no_nul(cls, command: list[str]) -> list[str]:
        return _check_command(command)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)


class ExecPublic(BaseModel):
    """A process started in a container."""

    id: str
    container_id: str
    status: ContainerStatus
    command: list[str]
    tty: bool
    stdin: bool
    user: str | None
    pid: Annotated[
        int | None, Field(description="Host pid of the command's parent, which waits for it.")
    ]
    exit_code: Annotated[
        int | None,
        Field(description="null while it runs (and when lost); 128+N when killed by signal N."),
    ]
    signal: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_record(cls, record: ExecRecord) -> ExecPublic:
        spec = record.spec
        return cls(
            id=record.id,
            container_id=record.container_id,
            status=record.status,
            command=list(spec.command),
            tty=spec.tty,
            stdin=spec.stdin,
            user=spec.user,
            pid=record.pid if record.status != Status.exited else None,
            exit_code=record.exit_code,
            signal=record.signal,
            error=record.error,
            created_at=record.created_at,  # type: ignore[arg-type]
            started_at=record.started_at,  # type: ignore[arg-type]
            finished_at=record.finished_at,  # type: ignore[arg-type]
        )


class ErrorDetail(BaseModel):
    detail: Any


class ImagePublic(BaseModel):
    """An image: a read-only root filesystem containers start from."""

    name: Annotated[str, Field(pattern=IMAGE_NAME_PATTERN)]
    builtin: Annotated[bool, Field(description="`host` and `busybox`; they cannot be deleted.")]
    created_at: datetime | None
    size_bytes: Annotated[int | None, Field(description="Bytes of regular files; null for `host`.")]
    files: Annotated[int | None, Field(description="Number of entries; null for `host`.")]
    contents: Annotated[
        list[str] | None,
        Field(
            description="For `host`, what its view of the host holds: the host directories "
            "bound read-only (from `/etc` only what every user may read), the usr-merge "
            "links, the empty directories of its own; null for other images."
        ),
    ] = None

    @classmethod
    def from_image(cls, image: Image) -> ImagePublic:
        return cls(
            name=image.name,
            builtin=image.builtin,
            created_at=image.created_at,  # type: ignore[arg-type]
            size_bytes=image.size_bytes,
            files=image.files,
            contents=list(image.contents) if image.contents is not None else None,
        )
