"""``docker cp`` both ways (runtime/archive.py), ``diff`` and ``export`` (runtime/changes.py).

    HEAD  ?path=   the path's stat in ``X-Docker-Container-Path-Stat``
    GET   ?path=   a tar of it, with the same header
    PUT   ?path=&noOverwriteDirNonDir=&copyUIDGID=   a tar unpacked into directory ``path``
    GET /containers/{id}/changes   [{"Path", "Kind"}]: 0 modified, 1 added, 2 deleted
    GET /containers/{id}/export    the root as a tar
    POST /commit?container=&repo=  the root as a new image: the container's config,
                                   the body's and ``changes`` over it (untagged
                                   without ``repo``)

The header is base64 of ``{"name", "size", "mode", "mtime", "linkTarget"}``
with ``mode`` as Go's ``os.FileMode`` (type bits high, not ``st_mode``'s),
which the CLI reads to tell a directory from a file.
"""

from __future__ import annotations

import base64
import json
import stat
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.images import docker_id
from app.docker.params import DockerBool
from app.uploads import spooled_body
from runtime import timeutil
from runtime.archive import PathStat
from runtime.images.building import BuildRequest
from runtime.images.oci import parse_config

router = APIRouter(tags=["docker containers"])

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = "application/x-tar"

#: Go's os.FileMode type bits (io/fs: ModeDir, ModeSymlink, ...).
GO_MODE_BITS = (
    (stat.S_ISDIR, 1 << 31),
    (stat.S_ISLNK, 1 << 27),
    (stat.S_ISBLK, 1 << 26),
    (stat.S_ISFIFO, 1 << 25),
    (stat.S_ISSOCK, 1 << 24),
    (stat.S_ISCHR, (1 << 26) | (1 << 21)),
)


def go_file_mode(mode: int) -> int:
    value = stat.S_IMODE(mode) & 0o777
    for test, bit in GO_MODE_BITS:
        if test(mode):
            value |= bit
    if mode & stat.S_ISUID:
        value |= 1 << 23
    if mode & stat.S_ISGID:
        value |= 1 << 22
    if mode & stat.S_ISVTX:
        value |= 1 << 20
    return value


def stat_header(path_stat: PathStat) -> dict[str, str]:
    body = {
        "name": path_stat.name,
        "size": path_stat.size,
        "mode": go_file_mode(path_stat.mode),
        "mtime": timeutil.rfc3339_nano(path_stat.mtime_ns),
        "linkTarget": path_stat.link_target,
    }
    return {STAT_HEADER: base64.b64encode(json.dumps(body).encode()).decode()}


@router.head("/containers/{ref}/archive")
def archive_head(ref: str, path: str, runtime: RuntimeDep) -> Response:
    return Response(headers=stat_header(runtime.archive_stat(ref, path)))


@router.get("/containers/{ref}/archive")
def archive_get(ref: str, path: str, runtime: RuntimeDep) -> StreamingResponse:
    path_stat, chunks = runtime.archive_read(ref, path)
    return StreamingResponse(chunks, media_type=TAR, headers=stat_header(path_stat))


@router.put("/containers/{ref}/archive")
async def archive_put(
    ref: str,
    path: str,
    request: Request,
    runtime: RuntimeDep,
    noOverwriteDirNonDir: DockerBool = False,  # noqa: N803 - Docker's parameter names
    copyUIDGID: DockerBool = False,  # noqa: N803
) -> Response:
    body = await spooled_body(request)
    try:
        await run_in_threadpool(
            runtime.archive_extract, ref, path, body, noOverwriteDirNonDir, copyUIDGID
        )
    finally:
        body.close()
    return Response(status_code=200)


@router.get("/containers/{ref}/changes")
def container_changes(ref: str, runtime: RuntimeDep) -> list[dict[str, object]]:
    return [{"Path": c.path, "Kind": int(c.kind)} for c in runtime.changes(ref)]


@router.get("/containers/{ref}/export")
def export_container(ref: str, runtime: RuntimeDep) -> StreamingResponse:
    return StreamingResponse(runtime.export(ref), media_type=TAR)


@router.post("/commit", status_code=201)
def commit_container(
    runtime: RuntimeDep,
    container: str,
    repo: str = "",
    tag: str = "",
    comment: str = "",
    author: str = "",
    pause: DockerBool = True,
    changes: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    config: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, str]:
    """``docker commit``: the container's root as a new image (runtime ``commit_image``).

    ``config`` is a container config (``Cmd``, ``Env``, ``ExposedPorts``, …):
    its set fields win over the container's; ``changes`` are Dockerfile
    instructions applied last; ``comment`` and ``author`` go into the
    image's config and history."""
    if tag and not repo:
        raise DockerError(400, "tag: give a repository (repo) with a tag")
    # The body is the ``config`` object of an image config: one parser for both.
    overrides = parse_config(json.dumps({"config": config}).encode()) if config else None
    request = BuildRequest(
        ref=(f"{repo}:{tag}" if tag else repo) or None,
        changes=tuple(c for c in changes if c),
        config=overrides,
        comment=comment,
        author=author,
        pause=pause,
    )
    image = runtime.commit_image(container, request)
    return {"Id": docker_id(image)}
