"""Docker's request bodies (create, exec, exec start), and how their fields
map onto the native ones (app/commands.py puts the mapped fields together).

Docker's body has some eighty fields and the CLI sends most of them, set to
their zero values, on every ``docker run``.  The fields we implement are
declared below and mapped; every other field must hold its zero value (or
one of the defaults listed in ``ACCEPTED``), else the request is refused
with a 400 that names it: an option is never silently dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.docker import createopts
from app.docker.errors import DockerError
from app.schemas import LimitsCreate, TtySize
from runtime.options import LOG_DRIVERS

#: Non-zero values that still mean "the default" for fields we do not implement.
ACCEPTED: dict[str, tuple[Any, ...]] = {
    "HostConfig.CgroupnsMode": ("private", "host"),
}


class DockerHostConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    AutoRemove: bool = False
    Memory: int | None = None
    NanoCpus: int | None = None
    PidsLimit: int | None = None
    Binds: list[str] | None = None
    ReadonlyRootfs: bool = False
    CapAdd: list[str] | None = None
    CapDrop: list[str] | None = None
    SecurityOpt: list[str] | None = None
    Ulimits: list[dict[str, Any]] | None = None
    Mounts: list[dict[str, Any]] | None = None
    Tmpfs: dict[str, str] | None = None
    VolumesFrom: list[str] | None = None
    Init: bool | None = None
    RestartPolicy: dict[str, Any] | None = None
    #: The terminal's size, sent with a TTY; any value is fine.
    ConsoleSize: list[int] | None = None
    # The options of runtime/options.py, mapped by ``options`` below.
    CpuShares: int = 0
    CpuQuota: int = 0
    CpuPeriod: int = 0
    CpusetCpus: str = ""
    CpusetMems: str = ""
    MemorySwap: int = 0
    MemoryReservation: int = 0
    MemorySwappiness: int | None = None
    GroupAdd: list[str] | None = None
    PidMode: str = ""
    IpcMode: str = ""
    UTSMode: str = ""
    ShmSize: int = 0
    Sysctls: dict[str, str] | None = None
    Devices: list[dict[str, Any]] | None = None
    DeviceCgroupRules: list[str] | None = None
    LogConfig: dict[str, Any] | None = None
    # The network (app/docker/networking.py maps them).
    NetworkMode: str = ""
    #: ``name:alias`` (app/docker/networking.py: links of the first network).
    Links: list[str] | None = None
    PortBindings: dict[str, list[dict[str, str]] | None] | None = None
    PublishAllPorts: bool = False
    # Kept and shown back (app/docker/createopts.py): we have one of each.
    Runtime: str = ""
    Isolation: str = ""
    VolumeDriver: str = ""


class ContainerConfig(BaseModel):
    """The body of ``POST /containers/create``."""

    model_config = ConfigDict(extra="allow")

    Image: str = Field(min_length=1)
    Cmd: list[str] | None = None
    Entrypoint: list[str] | None = None
    Env: list[str] | None = None
    WorkingDir: str = ""
    User: str = ""
    Hostname: str = ""
    Labels: dict[str, str] | None = None
    Tty: bool = False
    OpenStdin: bool = False
    StdinOnce: bool = False
    # Which streams the client will attach to: the client's business.
    AttachStdin: bool = False
    AttachStdout: bool = False
    AttachStderr: bool = False
    HostConfig: DockerHostConfig | None = None
    StopSignal: str = ""
    StopTimeout: int | None = None
    Healthcheck: dict[str, Any] | None = None
    ExposedPorts: dict[str, Any] | None = None
    NetworkingConfig: dict[str, Any] | None = None
    #: The first network's MAC (deprecated by API 1.44 for the endpoint's).
    MacAddress: str = ""
    #: docker-py sends ``runtime=`` here, where Docker's engine ignores it
    #: (its Config has no such field): checked as HostConfig's.
    Runtime: str = ""
    #: Anonymous volumes at these paths (``docker run -v /path``), unless a
    #: bind or mount already has the path (docker-py sends both for a bind).
    Volumes: dict[str, Any] | None = None

    def host(self) -> DockerHostConfig:
        return self.HostConfig or DockerHostConfig()


class ExecConfig(BaseModel):
    """The body of ``POST /containers/{id}/exec``."""

    model_config = ConfigDict(extra="allow")

    Cmd: list[str]
    Env: list[str] | None = None
    WorkingDir: str = ""
    User: str = ""
    Tty: bool = False
    AttachStdin: bool = False
    AttachStdout: bool = False
    AttachStderr: bool = False
    ConsoleSize: list[int] | None = None
    # Where and how the client will run it: its business (docker-py repeats
    # the container's id in the body, the CLI says Detach for `exec -d`).
    Detach: bool = False
    Container: str = ""
    #: The TTY's detach keys (app/docker/detach.py); docker-py spells it
    #: ``detachKeys`` (Docker decodes JSON keys case-insensitively).
    DetachKeys: str = Field("", validation_alias=AliasChoices("DetachKeys", "detachKeys"))


class ExecStart(BaseModel):
    """The body of ``POST /exec/{id}/start``."""

    model_config = ConfigDict(extra="allow")

    Detach: bool = False
    Tty: bool = False
    ConsoleSize: list[int] | None = None


def is_zero(value: Any) -> bool:
    if value is None or value is False or value == 0 or value == "":
        return True
    if isinstance(value, list | tuple):
        return all(is_zero(v) for v in value)
    if isinstance(value, dict):
        # A struct of zero fields (Docker's field names are capitalised) is
        # zero; a map with any key (ports, volumes, ...) says something.
        return all(k[:1].isupper() and is_zero(v) for k, v in value.items())
    return False


def _unsupported(prefix: str, extras: dict[str, Any] | None) -> list[str]:
    found = []
    for key, value in (extras or {}).items():
        path = f"{prefix}{key}"
        if is_zero(value) or value in ACCEPTED.get(path, ()):
            continue
        found.append(path)
    return found


def refuse_unsupported(config: ContainerConfig) -> None:
    """A 400 naming every option that is set but that we do not implement."""
    found = _unsupported("", config.model_extra)
    found += _unsupported("HostConfig.", config.host().model_extra)
    if found:
        raise DockerError(
            400,
            "unsupported option(s): "
            + ", ".join(sorted(found))
            + " (mydocker implements a subset of Docker's; see docs/docker-compat.md)",
        )


def refuse_unsupported_exec(config: ExecConfig) -> None:
    """A 400 naming every exec option that is set but that we do not implement."""
    refused = [key for key, value in (config.model_extra or {}).items() if not is_zero(value)]
    if refused:
        raise DockerError(400, "unsupported option(s): " + ", ".join(sorted(refused)))


def environment(env: list[str] | None) -> dict[str, str]:
    """``["A=1", "B"]`` -> ``{"A": "1"}``: a bare name unsets, as in Docker."""
    result: dict[str, str] = {}
    for entry in env or []:
        key, sep, value = entry.partition("=")
        if not key:
            raise DockerError(400, f"invalid environment variable: {entry!r}")
        if sep:
            result[key] = value
        else:
            result.pop(key, None)
    return result


def command(config: ContainerConfig, image_default: list[str] | None = None) -> list[str]:
    argv = list(config.Entrypoint or []) + list(config.Cmd or image_default or [])
    if not argv:
        raise DockerError(400, "no command specified")
    return argv


def tty_size(config: ContainerConfig) -> TtySize | None:
    """``ConsoleSize: [height, width]`` as the native ``tty_size``, with a TTY."""
    size = config.host().ConsoleSize
    if not config.Tty or not size or len(size) != 2 or not all(size):
        return None
    return TtySize(rows=size[0], cols=size[1])


#: ``Ulimits`` names that map onto the native limits when soft == hard
#: (setrlimit(2)); the others, and these with soft < hard, go to the options.
ULIMITS = {"nofile": "nofile", "fsize": "fsize_bytes"}


def limits(config: ContainerConfig) -> LimitsCreate | None:
    """``Memory``, ``NanoCpus``, ``PidsLimit`` and ``Ulimits`` as the native limits.

    Zero (and ``PidsLimit`` -1) mean "no limit" in Docker: the service's
    defaults then apply, as they do to a native create without the field."""
    host = config.host()
    values: dict[str, Any] = {}
    if host.Memory:
        values["memory_bytes"] = host.Memory
    if host.NanoCpus:
        values["cpus"] = host.NanoCpus / 1e9
    if host.PidsLimit and host.PidsLimit > 0:
        values["pids"] = host.PidsLimit
    for ulimit in host.Ulimits or []:
        name, soft, hard = ulimit.get("Name"), ulimit.get("Soft"), ulimit.get("Hard")
        if name in ULIMITS and soft == hard:
            values[ULIMITS[str(name)]] = soft
    return LimitsCreate(**values) if values else None


#: HostConfig's namespace modes: what shares the host's, what is our own.
NAMESPACE_MODES = {"PidMode": "pid", "IpcMode": "ipc", "UTSMode": "uts"}
OWN_NAMESPACE = ("", "private", "shareable")


def _namespaces(host: DockerHostConfig) -> list[str]:
    shared = []
    for field, namespace in NAMESPACE_MODES.items():
        mode = getattr(host, field)
        if mode == "host":
            shared.append(namespace)
        elif mode not in OWN_NAMESPACE:
            raise DockerError(
                400, f"unsupported option: HostConfig.{field} {mode!r}: only host or private"
            )
    return shared


def _devices(host: DockerHostConfig) -> list[dict[str, str]]:
    result = []
    for device in host.Devices or []:
        source = device.get("PathOnHost") or ""
        result.append(
            {
                "host": source,
                "target": device.get("PathInContainer") or source,
                "permissions": device.get("CgroupPermissions") or "rwm",
            }
        )
    return result


def _log_config(host: DockerHostConfig) -> dict[str, Any]:
    config = host.LogConfig or {}
    driver = config.get("Type") or "json-file"
    if driver not in LOG_DRIVERS:
        # Docker's own wording (daemon/logger/factory.go).
        raise DockerError(400, f"logger: no log driver named '{driver}' is registered")
    return {"log_driver": driver, "log_options": config.get("Config") or {}}


#: Healthcheck's durations (ns in Docker's body) -> the native seconds, and
#: the default Docker applies to a zero.
HEALTH_DURATIONS = {
    "Interval": ("interval_seconds", 30.0),
    "Timeout": ("timeout_seconds", 30.0),
    "StartPeriod": ("start_period_seconds", 0.0),
    "StartInterval": ("start_interval_seconds", 5.0),
}


def healthcheck(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's ``Healthcheck`` as the native one: ``Test`` is ``["CMD", argv...]``,
    ``["CMD-SHELL", "command"]`` (run by ``/bin/sh -c``) or ``["NONE"]`` (none)."""
    if not check or not check.get("Test"):
        return None
    test = check["Test"]
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise DockerError(400, "invalid Healthcheck.Test: a list of strings")
    kind, args = test[0], test[1:]
    if kind == "NONE":
        return None
    if kind == "CMD" and args:
        command = args
    elif kind == "CMD-SHELL" and len(args) == 1:
        command = ["/bin/sh", "-c", args[0]]
    else:
        raise DockerError(
            400,
            f"invalid Healthcheck.Test {test!r}: [CMD, argv...], [CMD-SHELL, command] or [NONE]",
        )
    result: dict[str, Any] = {"command": command, "retries": check.get("Retries") or 3}
    for key, (field, default) in HEALTH_DURATIONS.items():
        value = check.get(key) or 0
        if not isinstance(value, int) or value < 0:
            raise DockerError(400, f"invalid Healthcheck.{key}: nanoseconds, >= 0")
        result[field] = value / 1e9 if value else default
    return result


def options(config: ContainerConfig) -> dict[str, Any]:
    """The native ``options`` (runtime/options.py) from HostConfig and
    ``StopSignal``/``StopTimeout``; zero means "not given", as in Docker."""
    host = config.host()
    tuning = {
        "cpu_shares": host.CpuShares or None,
        "cpu_quota_us": host.CpuQuota if host.CpuQuota > 0 else None,
        "cpu_period_us": host.CpuPeriod or None,
        "cpuset_cpus": host.CpusetCpus or None,
        "cpuset_mems": host.CpusetMems or None,
        "memory_swap_bytes": host.MemorySwap or None,
        "memory_reservation_bytes": host.MemoryReservation or None,
        "memory_swappiness": None if host.MemorySwappiness in (None, -1) else host.MemorySwappiness,
        "device_rules": host.DeviceCgroupRules or [],
    }
    ulimits = [
        {"name": u.get("Name"), "soft": u.get("Soft"), "hard": u.get("Hard")}
        for u in host.Ulimits or []
        if not (u.get("Name") in ULIMITS and u.get("Soft") == u.get("Hard"))
    ]
    result: dict[str, Any] = {
        "host_namespaces": _namespaces(host),
        "shm_size_bytes": host.ShmSize or None,
        "group_add": host.GroupAdd or [],
        "ulimits": ulimits,
        "sysctls": host.Sysctls or {},
        "devices": _devices(host),
        "tuning": {k: v for k, v in tuning.items() if v is not None},
        **_log_config(host),
        **createopts.given_options(config),
    }
    if (check := healthcheck(config.Healthcheck)) is not None:
        result["healthcheck"] = check
    elif (config.Healthcheck or {}).get("Test") == ["NONE"]:
        result["no_healthcheck"] = True  # `--no-healthcheck`: not the image's either
    if config.StopSignal:
        result["stop_signal"] = config.StopSignal
    if config.StopTimeout is not None:
        result["stop_timeout"] = config.StopTimeout
    return result


def user(value: str) -> str | None:
    """Docker's ``User`` as the native ``uid[:gid]`` (numbers: there is no
    passwd lookup); ``root`` is uid 0."""
    if value in ("", "root", "root:root"):
        return None
    uid, sep, gid = value.partition(":")
    uid = "0" if uid == "root" else uid
    gid = "0" if gid == "root" else gid
    if not uid.isdigit() or (sep and not gid.isdigit()):
        raise DockerError(
            400, f"unsupported User {value!r}: give numbers, uid[:gid] (no passwd lookup)"
        )
    return f"{uid}:{gid}" if sep else uid


def security_options(options: list[str] | None) -> dict[str, Any]:
    """``SecurityOpt`` entries we implement: ``no-new-privileges[:true|false]``
    and ``seccomp=unconfined``; any other is refused.  Without any, our
    defaults hold: no_new_privs on and the default seccomp filter."""
    result: dict[str, Any] = {}
    for option in options or []:
        key, _, value = option.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges" and value in ("", "true", "false"):
            result["no_new_privileges"] = value != "false"
        elif key == "seccomp" and value == "unconfined":
            result["seccomp"] = "unconfined"
        else:
            raise DockerError(400, f"unsupported option: HostConfig.SecurityOpt {option!r}")
    return result


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size(text: str, where: str) -> int:
    number, unit = text.rstrip("kmgbKMGB"), text[len(text.rstrip("kmgbKMGB")) :].lower()
    if not number.isdigit() or unit not in _SIZE_UNITS:
        raise DockerError(400, f"invalid size {text!r} in {where}")
    return int(number) * _SIZE_UNITS[unit]


def _bind(bind: str) -> dict[str, Any]:
    """``/host:/container[:ro|rw]``, or ``volume:/container[:ro|rw|nocopy]``."""
    parts = bind.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise DockerError(
            400, f"invalid bind {bind!r}: /host/path:/container/path[:ro|rw] or volume:/path"
        )
    options = parts[2].split(",") if len(parts) == 3 else []
    createopts.check_propagation(set(options) & createopts.PROPAGATIONS, bind)
    if set(options) - {"ro", "rw", "nocopy", *createopts.PROPAGATIONS}:
        raise DockerError(
            400, f"unsupported bind options in {bind!r}: only ro, rw, nocopy or rprivate"
        )
    if parts[0].startswith("/"):
        if "nocopy" in options:
            raise DockerError(400, f"invalid bind {bind!r}: nocopy is for volumes")
        return {
            "type": "bind",
            "source": parts[0],
            "target": parts[1],
            "read_only": "ro" in options,
        }
    return {"type": "volume", "source": parts[0], "target": parts[1], "read_only": "ro" in options}


def _mount(mount: dict[str, Any]) -> dict[str, Any]:
    """One ``HostConfig.Mounts`` entry: type bind, tmpfs or volume."""
    kind, target = mount.get("Type"), mount.get("Target")
    known = {"Type", "Source", "Target", "ReadOnly", "TmpfsOptions", "VolumeOptions"}
    bind_options = {k: v for k, v in (mount.get("BindOptions") or {}).items() if v}
    if set(bind_options) <= {"Propagation"}:
        createopts.check_propagation({bind_options.get("Propagation") or "rprivate"}, mount)
        known.add("BindOptions")
    extra = {k for k in set(mount) - known if not is_zero(mount[k])}
    tmpfs = mount.get("TmpfsOptions") or {}
    volume = createopts.volume_options(mount)
    if (
        kind not in ("bind", "tmpfs", "volume")
        or extra
        or set(tmpfs) - {"SizeBytes"}
        or set(volume) - {"NoCopy", "Labels"}
    ):
        raise DockerError(
            400,
            f"unsupported mount {mount}: Type bind, tmpfs or volume, with Source, Target, "
            "ReadOnly, TmpfsOptions.SizeBytes, VolumeOptions.NoCopy, Labels, DriverConfig",
        )
    entry: dict[str, Any] = {
        "type": kind,
        "target": target,
        "read_only": bool(mount.get("ReadOnly")),
    }
    if kind == "bind":
        entry["source"] = mount.get("Source")
    elif kind == "volume":
        entry["source"] = mount.get("Source") or None
    elif tmpfs.get("SizeBytes"):
        entry["size_bytes"] = tmpfs["SizeBytes"]
    return entry


def mounts(host: DockerHostConfig, volumes: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``Binds``, ``Mounts``, ``Tmpfs`` and ``Volumes`` as native mounts, in that order.

    Binds are ``/host:/container[:ro|rw]``; a source without a leading
    ``/`` names a volume.  ``Mounts`` entries of type ``bind``, ``tmpfs``
    and ``volume`` map; ``Tmpfs`` takes ``size=`` and ``ro``/``rw``;
    ``Volumes`` paths not already mounted become anonymous volumes.
    Anything else (SELinux relabels, propagation, driver options) is refused."""
    result = [_bind(bind) for bind in host.Binds or []]
    result += [_mount(mount) for mount in host.Mounts or []]
    for target, tmpfs_options in (host.Tmpfs or {}).items():
        entry = {"type": "tmpfs", "target": target, "read_only": False}
        for option in filter(None, tmpfs_options.split(",")):
            key, _, value = option.partition("=")
            if key == "size":
                entry["size_bytes"] = _size(value, f"Tmpfs {target}")
            elif key in ("ro", "rw"):
                entry["read_only"] = key == "ro"
            else:
                raise DockerError(400, f"unsupported tmpfs option {option!r}: size=, ro, rw")
        result.append(entry)
    taken = {str(m["target"]).rstrip("/") for m in result}
    for target in volumes or {}:
        if target.rstrip("/") not in taken:
            result.append({"type": "volume", "target": target, "read_only": False})
    return result


def restart_policy(host: DockerHostConfig) -> dict[str, Any] | None:
    """``RestartPolicy`` as the native one (``""`` is ``no``)."""
    policy = host.RestartPolicy or {}
    extra = set(policy) - {"Name", "MaximumRetryCount"}
    if extra:
        raise DockerError(400, f"unsupported option(s): HostConfig.RestartPolicy.{sorted(extra)}")
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    if name != "on-failure" and count:
        raise DockerError(
            400,
            "invalid restart policy: maximum retry count cannot be used with "
            f"restart policy '{name}'",
        )
    return {"name": name, "maximum_retry_count": count}
