"""What a container should be: frozen dataclasses, no validation framework.

    Status            created / running / exited, as records store it
    Mount, RootfsPlan what the child mounts, and where it builds the root
    Limits            resources and time; each field declared once with its
                      bounds (LIMIT_BOUNDS, LIMIT_DESCRIPTIONS derive from it)
    Security          the resolved capabilities, ids, seccomp, userns
    ContainerSpec     a container as recorded and launched
    ExecSpec          a process to start in a running container
    SecurityRequest,  what ``Runtime.create`` / ``Runtime.exec`` take: the
    CreateRequest,    request before the runtime fills in ids, defaults and
    ExecRequest       the resolved security
    to_dict/from_dict the JSON form (records, the launcher protocol)

The HTTP layer validates user input with pydantic and maps it onto a
``CreateRequest`` (app/commands.py); the checks here are the runtime's own
invariants, so a spec that reaches the launcher is sane even if it did not
come through HTTP.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from runtime.network.attachment import ETC_FILES, Attachment, EndpointOptions, PortMapping

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_IMAGE = "host"
MOUNT_TYPES = ("bind", "tmpfs", "volume")
#: A volume's name, as Docker accepts it (daemon/names: RestrictedNamePattern).
VOLUME_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
#: A volume is the directory <name>, made as .new-<name> and removed as
#: .trash-<name>: each must fit NAME_MAX (255 bytes, path_resolution(7)).
VOLUME_NAME_MAX = 248


@dataclasses.dataclass(frozen=True)
class Mount:
    """A bind mount of a host path, a fresh tmpfs, or a volume, inside the container.

    One class with a ``type`` (rather than one class per type) so that
    ``from_dict`` stays generic; ``__post_init__`` holds the per-type rules.
    A ``volume`` names its volume in ``volume`` (``None`` in a request: a
    new anonymous one); the planner fills in the name and ``source``, the
    volume's data directory, which the child binds like any other source
    (runtime/volumes.py).
    """

    type: str
    target: str
    source: str | None = None
    read_only: bool = False
    size_bytes: int | None = None
    volume: str | None = None

    def __post_init__(self) -> None:
        if self.type not in MOUNT_TYPES:
            raise ValueError(f"mount type must be one of {', '.join(MOUNT_TYPES)}")
        check_container_path(self.target, "target")
        if self.type == "volume":
            if self.volume is not None and (
                not re.match(VOLUME_NAME_PATTERN, self.volume) or len(self.volume) > VOLUME_NAME_MAX
            ):
                raise ValueError(f"invalid volume name {self.volume!r}: [a-zA-Z0-9][a-zA-Z0-9_.-]+")
            if self.source is not None and not self.source.startswith("/"):
                raise ValueError("a volume's source is its data directory, an absolute path")
            if self.size_bytes is not None:
                raise ValueError("size_bytes is for tmpfs mounts")
        elif self.volume is not None:
            raise ValueError("only a volume mount names a volume")
        elif self.type == "bind":
            if not self.source or not self.source.startswith("/") or "\0" in self.source:
                raise ValueError("a bind mount needs an absolute source path")
            if self.size_bytes is not None:
                raise ValueError("size_bytes is for tmpfs mounts")
        elif self.source is not None:
            raise ValueError("a tmpfs mount has no source")
        if self.size_bytes is not None and self.size_bytes <= 0:
            raise ValueError("size_bytes must be positive")


def check_container_path(path: str, what: str) -> None:
    """Absolute, no ``..`` component, no NUL, not ``/`` itself."""
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"{what} must be an absolute path without NUL bytes")
    if ".." in path.split("/"):
        raise ValueError(f"{what} must not contain '..'")
    if path.strip("/") == "":
        raise ValueError(f"{what} must not be /")


def under(path: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or below one (both normalised)."""
    path = os.path.normpath(path)
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


#: In an overlay container's layer dir: the root's mount point, and the dir
#: that holds the overlay's ``upper/`` and ``work/``.
LAYER_ROOT = "root"
LAYER_RW = "rw"


@dataclasses.dataclass(frozen=True)
class RootfsPlan:
    """Where the child assembles the container's root: the runtime's paths.

    ``layer`` holds ``root/``, where the root is mounted (``root`` is
    ``layer/root``).  ``lower`` is the image's rootfs, under an overlay whose
    ``rw/upper`` and ``rw/work`` are in ``layer`` too; with ``read_only`` the
    child mounts a small tmpfs on ``rw`` first, so nothing is written to disk,
    and the root is made read-only once the mount points exist.

    ``lower`` is ``None`` for the ``host`` image (runtime/images/hostview.py):
    the root is a tmpfs with read-only binds of the host directories in
    ``binds``, the symlinks ``links`` (path, target), entries of ``masks``
    covered, and is made read-only once the mount points exist.  ``hide``
    lists paths covered with an empty read-only tmpfs (the state dir, when a
    bound directory holds it).
    """

    root: str
    lower: str | None = None
    layer: str | None = None
    read_only: bool = False
    hide: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    masks: tuple[str, ...] = ()
    #: A layered image's other lower dirs, beneath ``lower``, top first.
    more_lowers: tuple[str, ...] = ()


KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


class Status(StrEnum):
    """Where a container or an exec is in its life; the records store the value."""

    created = "created"
    running = "running"
    exited = "exited"


def number(value: float) -> str:
    """A bound as people write it: 4194304, not 4.1943e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class InvalidField(ValueError):
    """A spec value out of range; ``field`` names it (``limits.cpus``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _limit(low: float, high: float, description: str) -> Any:
    """A ``Limits`` field: unset by default, its bounds and its description
    in the field's metadata, where ``LIMIT_BOUNDS`` and the HTTP schema
    (app/schemas/limits.py builds ``LimitsCreate``/``LimitsPublic`` from them) read them."""
    return dataclasses.field(
        default=None, metadata={"bounds": (low, high), "description": description}
    )


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a container may take.  ``None`` means unlimited (or the service default).

    memory_bytes, pids, cpus      cgroup limits (memory without swap, tasks, CPU quota)
    timeout_seconds               wall clock from start; enforced by the launcher
    output_bytes                  stdout + stderr stored; beyond it the container is killed
    nofile, fsize_bytes           RLIMIT_NOFILE and RLIMIT_FSIZE of the command (getrlimit(2))

    Each field is declared here once, with its bounds: the HTTP schema and
    the runtime's checks both read them, so they never disagree.
    """

    # Below a few MiB the child cannot even finish its setup (docker's floor is 6 MB).
    memory_bytes: int | None = _limit(
        4 * MiB, 1 * TiB, "Memory (RAM, no swap) in bytes; past it the OOM killer acts"
    )
    # pid_max can be raised to 2**22 (proc(5)); more tasks than that cannot exist.
    pids: int | None = _limit(1, 1 << 22, "Processes and threads at once")
    # cpu.cfs_quota_us has a floor of 1 ms per 100 ms period; the upper bound
    # is also checked against the machine's CPU count at create time.
    cpus: float | None = _limit(0.01, 1024, "CPU time per wall-clock second")
    timeout_seconds: float | None = _limit(
        0.001, 7 * 24 * 3600, "Wall-clock seconds from start, then it is killed"
    )
    output_bytes: int | None = _limit(1, 1 * TiB, "stdout + stderr kept; past it, it is killed")
    # stdin, stdout and stderr are set up after the rlimits: dup2(2) onto fd 2
    # needs at least 3.  The top is fs.nr_open's default (proc(5)).
    nofile: int | None = _limit(3, 1 << 20, "RLIMIT_NOFILE: open files")
    fsize_bytes: int | None = _limit(1, 1 * TiB, "RLIMIT_FSIZE: the largest file it may write")

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            low, high = LIMIT_BOUNDS[field.name]
            integral = field.name not in FRACTIONAL_LIMITS
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidField(f"limits.{field.name}", "must be a number")
            if integral and not isinstance(value, int):
                raise InvalidField(f"limits.{field.name}", "must be an integer")
            if not low <= value <= high:
                raise InvalidField(
                    f"limits.{field.name}",
                    f"must be between {number(low)} and {number(high)}, not {number(value)}",
                )

    def over(self, defaults: Limits) -> Limits:
        """These limits, with ``defaults`` filling the fields left unset."""
        merged = {
            f.name: getattr(defaults, f.name)
            if getattr(self, f.name) is None
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        return Limits(**merged)

    @property
    def needs_cgroup(self) -> bool:
        return any(v is not None for v in (self.memory_bytes, self.pids, self.cpus))


#: ``Limits`` field -> (smallest, largest) accepted value, from the fields' metadata.
LIMIT_BOUNDS: dict[str, tuple[float, float]] = {
    f.name: f.metadata["bounds"] for f in dataclasses.fields(Limits)
}
#: ``Limits`` field -> what it limits, for the HTTP schema's descriptions.
LIMIT_DESCRIPTIONS: dict[str, str] = {
    f.name: f.metadata["description"] for f in dataclasses.fields(Limits)
}
#: The limits that take fractions; the others are whole numbers.
FRACTIONAL_LIMITS = ("cpus", "timeout_seconds")


#: Docker's default capability set (runtime/security/capabilities.py has the table).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
)
SECCOMP_PROFILES = ("default", "unconfined")
#: How many ids a user namespace maps (container 0..65535), as Docker's userns-remap.
USERNS_SIZE = 65536


@dataclasses.dataclass(frozen=True)
class Security:
    """What keeps a container in (docs/security.md); every opt-out is explicit.

    ``capabilities`` is the resolved set (names without ``CAP_``), not the
    user's add/drop lists.  ``userns_host_id`` is the first host id that
    container id 0 maps to, or ``None`` for no user namespace.
    """

    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    uid: int = 0
    gid: int = 0
    seccomp: str = "default"
    no_new_privileges: bool = True
    userns_host_id: int | None = None

    def __post_init__(self) -> None:
        if self.seccomp not in SECCOMP_PROFILES:
            raise ValueError(f"seccomp must be one of {', '.join(SECCOMP_PROFILES)}")
        if self.userns_host_id is not None and max(self.uid, self.gid) >= USERNS_SIZE:
            raise ValueError(f"with userns, uid and gid must be below {USERNS_SIZE}")


RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """When the runtime starts an exited container again (Docker's
    ``RestartPolicy``; runtime/restarts.py decides).  ``maximum_retry_count``
    caps ``on-failure`` (0: no cap)."""

    name: str = "no"
    maximum_retry_count: int = 0

    def __post_init__(self) -> None:
        if self.name not in RESTART_POLICIES:
            raise InvalidField(
                "restart_policy.name", f"must be one of {', '.join(RESTART_POLICIES)}"
            )
        if self.maximum_retry_count < 0:
            raise InvalidField("restart_policy.maximum_retry_count", "must not be negative")
        if self.maximum_retry_count and self.name != "on-failure":
            raise InvalidField(
                "restart_policy.maximum_retry_count", "is only for the on-failure policy"
            )


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """A container to launch.

    ``command[0]`` is looked up in ``PATH`` (of ``env``) inside the container
    when it has no slash, as execvp(3) does.
    """

    command: tuple[str, ...]
    hostname: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = "/"
    limits: Limits = dataclasses.field(default_factory=Limits)
    security: Security = dataclasses.field(default_factory=Security)
    #: Free user metadata (Docker's and OCI's labels); the launcher ignores it.
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Remove the container (record, logs) as soon as it has exited.
    auto_remove: bool = False
    #: A pseudo-terminal as stdin/stdout/stderr (``docker run -t``).
    tty: bool = False
    #: Keep stdin open for attach (``docker run -i``) instead of /dev/null.
    stdin: bool = False
    #: Close stdin when the first attached client closes its input (Docker's
    #: ``StdinOnce``, set by ``docker run -i``); the attach layer does it.
    stdin_once: bool = False
    image: str = DEFAULT_IMAGE
    #: A pulled image's id (its config's digest): what the container runs on
    #: even after ``image``, a tag, moves to another image.
    image_id: str | None = None
    read_only: bool = False
    mounts: tuple[Mount, ...] = ()
    #: Run ``command`` under a small init as PID 1 (tini, runtime/init.py).
    init: bool = False
    restart_policy: RestartPolicy = dataclasses.field(default_factory=RestartPolicy)
    #: Filled in by the runtime; without it the child keeps the host's root
    #: and only mounts a fresh /proc and /sys (what the core did).
    rootfs: RootfsPlan | None = None
    #: Its network (runtime/network/attachment.py); ``None``: only ``lo``.
    network: Attachment | None = None
    #: The networks it was connected to besides the first (``eth1``…).
    endpoints: tuple[Attachment, ...] = ()
    #: Stop signal and grace, host namespaces, rlimits, sysctls, devices,
    #: cgroup tuning, log driver (runtime/options.py).
    options: options_module.Options = dataclasses.field(
        default_factory=lambda: options_module.Options()
    )

    def __post_init__(self) -> None:
        _check_command(self.command)
        _check_env(self.env)

    def attachments(self) -> tuple[Attachment, ...]:
        """Every bridge endpoint it is connected to, the first network's first."""
        every = (self.network, *self.endpoints) if self.network else self.endpoints
        return tuple(a for a in every if a.connected)

    def all_mounts(self) -> tuple[Mount, ...]:
        """The user's mounts, then the network's /etc files (read-only binds)."""
        net = self.network
        if net is None or not net.etc_dir:
            return self.mounts
        etc = tuple(
            Mount("bind", f"/etc/{name}", source=os.path.join(net.etc_dir, name), read_only=True)
            for name in ETC_FILES
        )
        return self.mounts + etc

    def environ(self) -> dict[str, str]:
        """The environment the command sees: defaults first, then ``env``."""
        environ = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname, "HOME": "/root"}
        if self.tty:
            environ["TERM"] = DEFAULT_TERM
        for name in self.options.env_unset:  # Docker's bare NAME in Env unsets it
            environ.pop(name, None)
        environ.update(self.env)
        return environ


@dataclasses.dataclass(frozen=True)
class ExecSpec:
    """A process to start inside a running container (``docker exec``).

    It sees the container's environment with ``env`` on top, starts in
    ``workdir`` (the container's when ``None``) and runs as ``user``
    (``"uid[:gid]"`` or a name from the container's ``/etc/passwd``; the
    container's own user when ``None``).
    """

    command: tuple[str, ...]
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    tty: bool = False
    stdin: bool = False

    def __post_init__(self) -> None:
        _check_command(self.command)
        _check_env(self.env)

    def environ(self, container: ContainerSpec) -> dict[str, str]:
        environ = container.environ()
        if self.tty:
            environ.setdefault("TERM", DEFAULT_TERM)
        environ.update(self.env)
        return environ


#: terminfo entry for a tty, as docker sets it.
DEFAULT_TERM = "xterm"


@dataclasses.dataclass(frozen=True)
class SecurityRequest:
    """The security a create asks for, as the user says it; ``Runtime.create``
    resolves it into ``Security`` (the capability set, ids, the userns range),
    naming the field of any bad value."""

    user: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str = "default"
    no_new_privileges: bool = True
    userns: bool = False


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """The one input of ``Runtime.create``: a container as asked for.

    The HTTP layers (native and Docker) map their bodies onto it in one place
    (app/commands.py); the runtime fills in the rest (id, hostname, defaults,
    the resolved security, the root's plan) to make the ``ContainerSpec`` it
    records and launches.  ``limits`` are the request's own: unset fields take
    the service's defaults.  Without ``start`` the child waits on its sync
    pipe until ``Runtime.start_container``; ``tty_size`` is the terminal's
    initial ``(rows, cols)`` with ``tty``.
    """

    #: Empty to take the image's (``runtime.imagedefaults``, Docker's rules).
    command: tuple[str, ...] = ()
    #: Replaces the image's Entrypoint (and drops its Cmd); ``()`` clears it.
    entrypoint: tuple[str, ...] | None = None
    name: str | None = None
    hostname: str | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workdir: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    auto_remove: bool = False
    limits: Limits = dataclasses.field(default_factory=Limits)
    image: str | None = None
    read_only: bool = False
    mounts: tuple[Mount, ...] = ()
    #: Containers whose volumes and binds to mount too, ``ref[:ro|rw]``.
    volumes_from: tuple[str, ...] = ()
    init: bool = False
    restart_policy: RestartPolicy = dataclasses.field(default_factory=RestartPolicy)
    security: SecurityRequest = dataclasses.field(default_factory=SecurityRequest)
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    tty_size: tuple[int, int] | None = None
    start: bool = True
    #: ``none``, ``host``, ``bridge`` or a user network's name; its ports and
    #: the extra names it answers to there (runtime/network/attachment.py).
    network: str = "none"
    ports: tuple[PortMapping, ...] = ()
    network_aliases: tuple[str, ...] = ()
    endpoint: EndpointOptions = dataclasses.field(default_factory=EndpointOptions)
    options: options_module.Options = dataclasses.field(
        default_factory=lambda: options_module.Options()
    )


@dataclasses.dataclass(frozen=True)
class ExecRequest:
    """The one input of ``Runtime.exec``: the ``ExecSpec`` to run, and the
    terminal's initial ``(rows, cols)`` with its ``tty``."""

    spec: ExecSpec
    tty_size: tuple[int, int] | None = None


def _check_command(command: tuple[str, ...]) -> None:
    if not command:
        raise ValueError("command must not be empty")
    for arg in command:
        if "\0" in arg:
            raise ValueError("command must not contain NUL bytes")


def _check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment variable {key!r}")


T = TypeVar("T")

# Last: runtime/options.py imports InvalidField from here.  With annotations
# as strings, the field types above resolve when from_dict asks for them.
from runtime import options as options_module  # noqa: E402


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a spec dataclass (tuples become lists).

    One walk, no copies of the leaves: ``dataclasses.asdict`` deep-copies
    every value and a second pass turned its tuples into lists, which cost
    a launch more CPU than its SQLite writes (docs/performance-log.md, "The lean
    API path and the Docker path")."""
    return typing.cast(dict[str, Any], _plain(obj))


_field_names: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    names = _field_names.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        names = _field_names[kind] = tuple(f.name for f in dataclasses.fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


Coerce = Callable[[Any], Any]
#: Per dataclass: each field's name and its decoder, resolved from the type
#: hints once (``typing.get_type_hints`` evaluates every annotation string,
#: and ``get_origin``/``get_args`` per value cost the launcher and the API
#: a spec's decoding per launch, docs/performance-log.md, "CPU per launch and
#: launches/s").
_decoders: dict[type, tuple[tuple[str, Coerce], ...]] = {}


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """The inverse of ``to_dict`` for nested frozen dataclasses."""
    decoders = _decoders.get(cls)
    if decoders is None:
        hints = typing.get_type_hints(cls)
        decoders = _decoders[cls] = tuple(
            (field.name, _coercer(hints[field.name]))
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
    return cls(**{name: decode(data[name]) for name, decode in decoders if name in data})


def _identity(value: Any) -> Any:
    return value


def _coercer(hint: Any) -> Coerce:
    """How a value of type ``hint`` is decoded (None stays None): an
    optional as its first other type, a dataclass from its dict, a tuple
    item by item, a mapping as a dict, anything else as it is."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        others = [arg for arg in args if arg is not type(None)]
        if others:
            return _coercer(others[0])
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        cls = hint
        return lambda value: None if value is None else from_dict(cls, value)
    if origin is tuple:
        item = _coercer(args[0] if args else Any)
        if item is _identity:
            return lambda value: None if value is None else tuple(value)
        return lambda value: None if value is None else tuple(item(v) for v in value)
    if origin in (Mapping, dict):
        return lambda value: None if value is None else dict(value)
    return _identity
