"""The container models: ``ContainerCreate`` (the body of ``POST /containers``),
its mounts, ``ContainerPublic`` (what every container route answers), and
the bulk kill's body and result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from app.schemas.fields import (
    HOSTNAME_RE,
    IMAGE_REF_PATTERN,
    MAX_ARG_BYTES,
    MAX_ARGV_ENV_BYTES,
    NAME_PATTERN,
    AbsolutePath,
    Argument,
    Capability,
    ContainerPath,
    ContainerStatus,
    Environment,
    Labels,
    Signal,
    TtySize,
    check_command,
    check_env,
    check_labels,
    fresh,
)
from app.schemas.limits import LimitsCreate, LimitsPublic, limits_public
from app.schemas.networks import (
    Alias,
    ContainerNetwork,
    EndpointCreate,
    NetworkName,
    PortCreate,
)
from runtime import ContainerRecord
from runtime.options import Options
from runtime.restarts import restart_count
from runtime.security import capabilities
from runtime.spec import (
    VOLUME_NAME_MAX,
    VOLUME_NAME_PATTERN,
    Mount,
    RestartPolicy,
    Status,
)


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


class VolumeMount(BaseModel):
    """A volume (`docker run --volume NAME:DST[:ro]`): named, made on first
    use if missing, or, without `source`, a new anonymous one (`-v DST`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["volume"]
    source: Annotated[
        str | None,
        Field(
            pattern=VOLUME_NAME_PATTERN,
            max_length=VOLUME_NAME_MAX,
            description="The volume's name; omitted: a new anonymous volume, removed "
            "with the container when asked (`DELETE /containers/{ref}?volumes=true`).",
        ),
    ] = None
    target: ContainerPath
    read_only: StrictBool = False

    def to_runtime(self) -> Mount:
        return Mount("volume", self.target, volume=self.source, read_only=self.read_only)


class RestartPolicyCreate(BaseModel):
    """When the service starts the container again after it exits (docs/reliability.md)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        Literal["no", "on-failure", "always", "unless-stopped"],
        Field(
            description="`on-failure`: after a non-zero exit; `always`: after any exit, "
            "and when the service starts; `unless-stopped`: as always, unless stopped by "
            "the user. A stop by the user is never restarted."
        ),
    ] = "no"
    maximum_retry_count: Annotated[
        int,
        Field(ge=0, le=1 << 31, description="Restarts at most (`on-failure` only; 0: no cap)."),
    ] = 0

    @model_validator(mode="after")
    def _count_for_on_failure(self) -> RestartPolicyCreate:
        if self.maximum_retry_count and self.name != "on-failure":
            raise ValueError("maximum_retry_count is only for the on-failure policy")
        return self

    def to_runtime(self) -> RestartPolicy:
        return RestartPolicy(self.name, self.maximum_retry_count)


MountSpec = Annotated[BindMount | TmpfsMount | VolumeMount, Field(discriminator="type")]


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
            description="argv of the command; `command[0]` is looked up in `PATH` "
            "inside the container when it has no slash.  Optional when the image has an "
            "Entrypoint or a Cmd: then it replaces the Cmd (Docker's rules, docs/images.md).",
        ),
    ] = fresh(list)
    entrypoint: Annotated[
        list[Argument] | None,
        Field(
            description="Replaces the image's Entrypoint, and drops its Cmd; `[]` clears "
            "it.  The container runs `entrypoint + command`.",
        ),
    ] = None
    name: Annotated[
        str | None,
        Field(pattern=NAME_PATTERN, description="Unique name; defaults to the id."),
    ] = None
    hostname: Annotated[
        str | None,
        Field(
            max_length=64,
            description="RFC 1123 hostname; defaults to the first 12 characters of the id.",
            json_schema_extra={"pattern": HOSTNAME_RE.pattern},
        ),
    ] = None
    env: Annotated[
        Environment,
        Field(description="Environment variables; `PATH` defaults to a sane value."),
    ] = fresh(dict)
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
    ] = fresh(list)
    cap_drop: Annotated[
        list[Capability],
        Field(description="Capabilities to drop, by name; `ALL` to start from none."),
    ] = fresh(list)
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
    ] = fresh(dict)
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
        list[MountSpec], Field(description="Bind, tmpfs and volume mounts, in order.")
    ] = fresh(list)
    network: Annotated[
        NetworkName,
        Field(
            description="`none` (only `lo`), `bridge` (the built-in bridge network), `host` "
            "(the host's network namespace) or a user network's name (docs/networking.md)."
        ),
    ] = "none"
    ports: Annotated[
        list[PortCreate],
        Field(max_length=1024, description="Published ports; need a bridge network."),
    ] = fresh(list)
    network_aliases: Annotated[
        list[Alias],
        Field(max_length=64, description="Extra names it answers to on its user network."),
    ] = fresh(list)
    endpoint: Annotated[
        EndpointCreate | None,
        Field(description="A static address, MAC, links on its network (docs/networking.md)."),
    ] = None
    volumes_from: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^:]+(:(ro|rw))?$")]],
        Field(
            description="Containers whose volume and bind mounts this one mounts too "
            "(`ref[:ro|rw]`, Docker's `--volumes-from`)."
        ),
    ] = fresh(list)
    init: Annotated[
        StrictBool,
        Field(
            description="Run the command under tini as PID 1, which forwards signals "
            "and reaps zombies (`docker run --init`)."
        ),
    ] = False
    restart_policy: Annotated[
        RestartPolicyCreate | None, Field(description="Restart after an exit (default `no`).")
    ] = None
    options: Annotated[
        Options,
        Field(
            description="Stop signal and grace period, host namespaces (`pid`, `ipc`, "
            "`uts`), /dev/shm size, supplementary groups, rlimits, namespaced sysctls, "
            "devices, cgroup tuning (CPU shares, quota, cpuset, swap, reservation), log "
            "driver: docs/limits.md."
        ),
    ] = fresh(Options)

    @field_validator("command", "entrypoint")
    @classmethod
    def _no_nul(cls, command: list[str] | None) -> list[str] | None:
        return None if command is None else check_command(command)

    @field_validator("cap_add", "cap_drop")
    @classmethod
    def _capability_names(cls, names: list[str]) -> list[str]:
        for name in names:
            capabilities.normalize(name)  # ValueError names the capability
        return names

    @model_validator(mode="after")
    def _argv_env_size(self) -> ContainerCreate:
        argv = [*(self.entrypoint or ()), *self.command]
        total = sum(len(arg.encode()) + 1 for arg in argv)
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
        if hostname is not None and not HOSTNAME_RE.match(hostname):
            raise ValueError(
                "must be an RFC 1123 hostname: labels of letters, digits and inner "
                "hyphens, at most 63 characters each, joined by dots"
            )
        return hostname

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        return check_env(env)

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)


class MountPublic(BaseModel):
    """A mount as the container got it: a volume's `source` is its data directory."""

    type: str
    source: str | None
    target: str
    read_only: bool
    volume: Annotated[str | None, Field(description="The volume's name (type `volume`).")] = None

    @classmethod
    def from_mount(cls, mount: Mount) -> MountPublic:
        return cls(
            type=mount.type,
            source=mount.source,
            target=mount.target,
            read_only=mount.read_only,
            volume=mount.volume,
        )


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
    network: Annotated[
        ContainerNetwork, Field(description="Its network, with the assigned address and ports.")
    ]
    networks: Annotated[
        list[ContainerNetwork],
        Field(description="Every network it is connected to, the first one's first."),
    ] = []
    mounts: Annotated[list[MountPublic], Field(description="Its mounts, in order.")] = []
    init: Annotated[bool, Field(description="Its command runs under tini.")] = False
    restart_policy: RestartPolicyCreate = RestartPolicyCreate()
    restart_count: Annotated[
        int, Field(description="How many times its restart policy started it again.")
    ] = 0
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
    paused: Annotated[
        bool, Field(description="Running, with every process frozen (`POST .../pause`).")
    ] = False

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
            network=ContainerNetwork.from_attachment(spec.network),
            networks=[ContainerNetwork.from_attachment(a) for a in spec.attachments()],
            mounts=[MountPublic.from_mount(m) for m in spec.mounts],
            init=spec.init,
            restart_policy=RestartPolicyCreate(
                name=spec.restart_policy.name,  # type: ignore[arg-type]
                maximum_retry_count=spec.restart_policy.maximum_retry_count,
            ),
            restart_count=restart_count(record),
            **{k: record.results.get(k) for k in RESULT_FIELDS},
            paused=record.status == Status.running and bool(record.results.get("paused")),
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
