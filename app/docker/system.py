"""``/_ping``, ``/version``: how Docker clients find out whom they talk to."""

from __future__ import annotations

import os
import platform
from typing import Any

from fastapi import APIRouter, Response

from app.docker.version import API_VERSION, ENGINE_VERSION, MIN_API_VERSION

router = APIRouter(tags=["docker system"])


@router.api_route("/_ping", methods=["GET", "HEAD"])
def ping() -> Response:
    """``OK``; the CLI reads ``API-Version`` from the headers (a HEAD gets no body)."""
    return Response(
        content=b"OK",
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"},
    )


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
