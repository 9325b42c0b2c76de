"""``/_ping``, ``/version``: how Docker clients find out whom they talk to."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

from fastapi import APIRouter, Response

from app.deps import RuntimeDep
from app.docker.version import API_VERSION, ENGINE_VERSION, MIN_API_VERSION
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


@router.get("/info")
def info(runtime: RuntimeDep) -> dict[str, Any]:
    """What ``docker info`` shows; the CLI also reads ``Swarm`` before an inspect."""
    records = runtime.list()
    running = sum(r.status == Status.running for r in records)
    return {
        "ID": "mydocker",
        "Name": socket.gethostname(),
        "Containers": len(records),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(records) - running,
        "Images": len(runtime.list_images()),
        "Driver": "mydocker",
        "DockerRootDir": runtime.state_dir,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "OSType": "linux",
        "OperatingSystem": "mydocker",
        "Architecture": platform.machine(),
        "KernelVersion": os.uname().release,
        "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "ServerVersion": ENGINE_VERSION,
        "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": ""},
        "Plugins": {"Volume": [], "Network": [], "Log": ["json-file"]},
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
