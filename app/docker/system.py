"""``/_ping``, ``/version``, ``/info``: how Docker clients find out whom
they talk to; ``/system/df``: what the containers and images take on disk."""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from app.deps import RuntimeDep
from app.docker import images, views
from app.docker.version import API_VERSION, ENGINE_VERSION, MIN_API_VERSION
from runtime import RuntimeFailure, cgroups
from runtime.options import LOG_DRIVERS
from runtime.spec import Status

router = APIRouter(tags=["docker system"])


@router.api_route("/_ping", methods=["GET", "HEAD"])
def ping() -> Response:
    """``OK``; the CLI reads ``API-Version`` from the headers (a HEAD gets no body)."""
    return Response(
        content=b"OK",
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"},
    )


def _os_release() -> dict[str, str]:
    """os-release(5): ``docker info`` shows the host's ``PRETTY_NAME`` and ``VERSION_ID``."""
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}


def _cgroup_version() -> str:
    version = cgroups.detect()
    return version.removeprefix("v") if version else ""


def _capabilities() -> dict[str, Any]:
    """What ``docker info`` warns about when false: all of these are applied."""
    return {
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "OomKillDisable": False,
        "KernelMemory": False,
        "KernelMemoryTCP": False,
    }


@router.get("/info")
def info(runtime: RuntimeDep) -> dict[str, Any]:
    """What ``docker info`` shows; the CLI also reads ``Swarm`` before an inspect."""
    records = runtime.list()
    running = sum(r.status == Status.running for r in records)
    return {
        "Debug": False,
        "CgroupVersion": _cgroup_version(),
        "OSVersion": _os_release().get("VERSION_ID", ""),
        "SystemTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": "mydocker"}},
        "Isolation": "",
        "InitBinary": "",
        "Labels": [],
        "ExperimentalBuild": False,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "NFd": 0,
        "NGoroutines": 0,
        "NEventsListener": 0,
        "DriverStatus": [["Backing Filesystem", "overlayfs"]],
        **_capabilities(),
        "ID": "mydocker",
        "Name": socket.gethostname(),
        "Containers": len(records),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(records) - running,
        "Images": len(runtime.list_images()),
        "Driver": "overlayfs",
        "DockerRootDir": runtime.state_dir,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "OSType": "linux",
        "OperatingSystem": _os_release().get("PRETTY_NAME", "Linux"),
        "Architecture": platform.machine(),
        "KernelVersion": os.uname().release,
        "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "ServerVersion": ENGINE_VERSION,
        "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": ""},
        "Plugins": {"Volume": [], "Network": [], "Log": list(LOG_DRIVERS)},
        "SecurityOptions": ["name=seccomp,profile=default", "name=no-new-privileges"],
        "Warnings": [],
    }


@router.get("/version")
def version() -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": os.uname().release,
        "GitCommit": "mydocker",
        "GoVersion": "python" + platform.python_version(),
        "BuildTime": "",
    }
    return {
        "Platform": {"Name": "mydocker"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
        "Version": ENGINE_VERSION,
        **details,
    }


@router.get("/system/df")
def disk_usage(runtime: RuntimeDep) -> dict[str, Any]:
    """``docker system df``: images (their files), containers (what each has
    written to its root, ``SizeRw``), no volumes or build cache."""
    records = runtime.list()
    users: dict[str, int] = {}
    for record in records:
        users[views.image_of(record)] = users.get(views.image_of(record), 0) + 1
    image_list = []
    sizes: dict[str, int] = {}
    for image in runtime.list_images():
        entry = images.summary(image)
        entry["Containers"] = users.get(image.name, 0)
        image_list.append(entry)
        sizes[image.name] = image.size_bytes or 0
    containers = []
    for record in records:
        entry = views.summary(record)
        try:
            entry["SizeRw"] = runtime.writable_bytes(record.id)
        except RuntimeFailure:
            continue  # removed meanwhile
        entry["SizeRootFs"] = entry["SizeRw"] + sizes.get(views.image_of(record), 0)
        containers.append(entry)
    return {
        "LayersSize": sum(i["Size"] for i in image_list),
        "Images": image_list,
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
    }
