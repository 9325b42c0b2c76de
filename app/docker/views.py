"""Containers as Docker shows them: ``/containers/{id}/json`` and ``/containers/json``.

Only what the record knows is shown; the rest carries Docker's zero values,
so clients that read a field find it (docker-py reads
``HostConfig.LogConfig.Type`` before it streams logs).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from app.docker import createopts, networking
from runtime import ContainerRecord
from runtime.health import Health, HealthStatus
from runtime.options import SHM_SIZE, Healthcheck, Options
from runtime.restarts import restart_count
from runtime.spec import DEFAULT_IMAGE, ContainerSpec, Mount, Status

ZERO_TIME = "0001-01-01T00:00:00Z"


def image_id(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def epoch(ts: str | None) -> int:
    parsed = _parse(ts)
    return int(parsed.timestamp()) if parsed else 0


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration``, as ``docker ps`` prints it."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _since(ts: str | None) -> float:
    parsed = _parse(ts)
    return (datetime.now(UTC) - parsed).total_seconds() if parsed else 0.0


def exit_code(record: ContainerRecord) -> int:
    if record.status != Status.exited:
        return 0
    return -1 if record.exit_code is None else record.exit_code


def paused(record: ContainerRecord) -> bool:
    """Running with its cgroup frozen (runtime/lifecycle.py records it)."""
    return record.status == Status.running and bool(record.results.get("paused"))


def state_name(record: ContainerRecord) -> str:
    """Docker's ``State.Status`` and list ``State``: ``paused`` is one of them."""
    return "paused" if paused(record) else record.status.value


def status_text(record: ContainerRecord, health: Health | None = None) -> str:
    if record.status == Status.created:
        return "Created"
    if record.status == Status.running:
        # As `docker ps` shows it: "Up 3 minutes (healthy)", "(health: starting)",
        # "Up 3 minutes (Paused)".
        up = f"Up {human_duration(_since(record.started_at))}"
        if paused(record):
            return f"{up} (Paused)"
        if health is not None:
            starting = health.status == HealthStatus.starting
            return f"{up} (health: starting)" if starting else f"{up} ({health.status})"
        return up
    return f"Exited ({exit_code(record)}) {human_duration(_since(record.finished_at))} ago"


def image_of(record: ContainerRecord) -> str:
    return record.spec.image or DEFAULT_IMAGE


def labels_of(record: ContainerRecord) -> dict[str, str]:
    return dict(record.spec.labels)


def _state(record: ContainerRecord) -> dict[str, Any]:
    return {
        "Status": state_name(record),
        "Running": record.status == Status.running,
        "Paused": paused(record),
        "Restarting": False,
        "OOMKilled": bool(record.results.get("oom_killed")),
        "Dead": False,
        "Pid": record.pid if record.status == Status.running and record.pid else 0,
        "ExitCode": exit_code(record),
        "Error": record.error or "",
        "StartedAt": record.started_at or ZERO_TIME,
        "FinishedAt": record.finished_at or ZERO_TIME,
    }


def _namespace_mode(options: Options, namespace: str, own: str) -> str:
    return "host" if options.shares(namespace) else own


def _options(spec: ContainerSpec) -> dict[str, Any]:
    """HostConfig's keys of runtime/options.py, as Docker shows them."""
    options, tuning = spec.options, spec.options.tuning
    return {
        "CpuShares": tuning.cpu_shares or 0,
        "CpuQuota": tuning.cpu_quota_us or 0,
        "CpuPeriod": tuning.cpu_period_us or 0,
        "CpusetCpus": tuning.cpuset_cpus or "",
        "CpusetMems": tuning.cpuset_mems or "",
        "MemorySwap": tuning.memory_swap_bytes or 0,
        "MemoryReservation": tuning.memory_reservation_bytes or 0,
        "MemorySwappiness": tuning.memory_swappiness,
        "GroupAdd": list(options.group_add) or None,
        "PidMode": _namespace_mode(options, "pid", ""),
        "IpcMode": _namespace_mode(options, "ipc", "private"),
        "UTSMode": _namespace_mode(options, "uts", ""),
        "ShmSize": options.shm_size_bytes or SHM_SIZE,
        "Sysctls": dict(options.sysctls) or None,
        "Devices": [
            {"PathOnHost": d.host, "PathInContainer": d.target, "CgroupPermissions": d.permissions}
            for d in options.devices
        ],
        "DeviceCgroupRules": list(tuning.device_rules) or None,
        "LogConfig": {"Type": options.log_driver, "Config": dict(options.log_options)},
        "Tmpfs": dict(options.tmpfs_given) or _tmpfs(spec) or None,
        "Isolation": options.isolation,
        "VolumeDriver": options.volume_driver,
        "VolumesFrom": list(options.volumes_from) or None,
        "CgroupnsMode": "private",
        "Cgroup": "",
        "CgroupParent": "",
        "Runtime": createopts.RUNTIME,
    }


def _tmpfs(spec: ContainerSpec) -> dict[str, str]:
    """The tmpfs mounts of a create that did not give Docker's strings (the
    native API's), in Docker's spelling."""
    return {
        m.target: ",".join(
            (["ro"] if m.read_only else []) + ([f"size={m.size_bytes}"] if m.size_bytes else [])
        )
        for m in spec.mounts
        if m.type == "tmpfs"
    }


def host_config(record: ContainerRecord) -> dict[str, Any]:
    spec = record.spec
    limits = spec.limits
    cpus = limits.cpus
    ulimits = [
        {"Name": name, "Soft": value, "Hard": value}
        for name, value in (("nofile", limits.nofile), ("fsize", limits.fsize_bytes))
        if value is not None
    ] + [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.options.ulimits]
    return {
        "AutoRemove": spec.auto_remove,
        "Binds": [
            f"{m.source}:{m.target}" + (":ro" if m.read_only else "")
            for m in spec.mounts
            if m.type == "bind"
        ]
        or None,
        "CapAdd": None,
        "CapDrop": None,
        **_options(spec),
        "Memory": limits.memory_bytes or 0,
        "NanoCpus": round(cpus * 1e9) if cpus else 0,
        "PidsLimit": limits.pids,
        "Ulimits": ulimits,
        "NetworkMode": networking.network_mode(record),
        "PortBindings": {
            key: [{"HostIp": b["HostIp"], "HostPort": b["HostPort"]} for b in bindings]
            for key, bindings in networking.ports(record).items()
        },
        "Privileged": False,
        "ReadonlyRootfs": spec.read_only,
        "Init": spec.init,
        "RestartPolicy": {
            "Name": spec.restart_policy.name,
            "MaximumRetryCount": spec.restart_policy.maximum_retry_count,
        },
    }


def _mount(mount: Mount) -> dict[str, Any]:
    view = {
        "Type": mount.type,
        "Source": mount.source or "",
        "Destination": mount.target,
        "Mode": "ro" if mount.read_only else "",
        "RW": not mount.read_only,
        "Propagation": "rprivate" if mount.type == "bind" else "",
    }
    if mount.type == "volume":
        view.update(Name=mount.volume or "", Driver="local")
    return view


def _health(health: Health | None) -> dict[str, Any]:
    if health is None:
        return {}
    probes = [
        {"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output}
        for p in health.log
    ]
    return {
        "Health": {
            "Status": str(health.status),
            "FailingStreak": health.failing_streak,
            "Log": probes,
        }
    }


def _healthcheck(check: Healthcheck | None) -> dict[str, Any]:
    if check is None:
        return {}
    return {
        "Healthcheck": {
            "Test": ["CMD", *check.command],
            "Interval": round(check.interval_seconds * 1e9),
            "Timeout": round(check.timeout_seconds * 1e9),
            "StartPeriod": round(check.start_period_seconds * 1e9),
            "StartInterval": round(check.start_interval_seconds * 1e9),
            "Retries": check.retries,
        }
    }


def inspect(record: ContainerRecord, health: Health | None = None) -> dict[str, Any]:
    spec = record.spec
    command = list(spec.command)
    image = image_of(record)
    tty = spec.tty
    stdin = spec.stdin
    return {
        "Id": record.id,
        "Created": record.created_at,
        "Path": command[0],
        "Args": command[1:],
        "State": {**_state(record), **_health(health)},
        "Image": record.spec.image_id or image_id(image),
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": "/" + record.name,
        "RestartCount": restart_count(record),
        "Driver": "mydocker",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(record),
        "Mounts": [_mount(m) for m in spec.mounts],
        "Config": {
            "Hostname": spec.hostname,
            "Domainname": "",
            "User": "",
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Tty": tty,
            "OpenStdin": stdin,
            "StdinOnce": spec.stdin_once,
            "Env": createopts.env_view(record),
            "Cmd": command,
            "Image": image,
            "Volumes": None,
            "WorkingDir": spec.workdir,
            "Entrypoint": None,
            "OnBuild": None,
            "Labels": labels_of(record),
            "StopSignal": spec.options.stop_signal,
            **_healthcheck(spec.options.healthcheck),
            **(
                {"StopTimeout": spec.options.stop_timeout}
                if spec.options.stop_timeout is not None
                else {}
            ),
        },
        "NetworkSettings": networking.settings(record),
    }


def summary(record: ContainerRecord, health: Health | None = None) -> dict[str, Any]:
    """One entry of ``GET /containers/json``."""
    image = image_of(record)
    return {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": image,
        "ImageID": record.spec.image_id or image_id(image),
        "Command": " ".join(record.spec.command),
        "Created": epoch(record.created_at),
        "Ports": networking.summary_ports(record),
        "Labels": labels_of(record),
        "State": state_name(record),
        "Status": status_text(record, health),
        "HostConfig": {"NetworkMode": networking.network_mode(record)},
        "NetworkSettings": {"Networks": networking.settings(record)["Networks"]},
        "Mounts": [],
    }
