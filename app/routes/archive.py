"""``/containers/{ref}/archive``: files out of and into a running container
(runtime/archive.py), a tar each way.

    GET /archive?path=        a tar of the file or directory (named by its base)
    GET /archive/stat?path=   what is at the path (its link not followed)
    PUT /archive?path=        a tar (or .tar.gz) unpacked into directory ``path``
    GET /changes              what it changed in its root (runtime/changes.py)
    GET /export               its root as a tar
    POST /commit?name=        its root imported as a new image

Paths are the container's: resolved inside its root, never out of it
(``..`` and absolute links stop at its root); an archive member that would
leave the extraction point is a `400`.
"""

from __future__ import annotations

import stat
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.deps import RuntimeDep
from app.routes.containers import CONFLICT, NOT_FOUND
from app.routes.responses import SERVICE_ERRORS
from app.schemas import IMAGE_REF_PATTERN, ErrorDetail, ImagePublic
from app.uploads import spooled_body
from runtime import timeutil
from runtime.archive import PathStat

router = APIRouter(prefix="/containers", tags=["containers"], responses=SERVICE_ERRORS)

PathQuery = Annotated[
    str, Query(min_length=1, max_length=4096, description="A path in the container.")
]
MISSING = {
    404: {"model": ErrorDetail, "description": "No container, or nothing at the path."},
    **CONFLICT,
}
TAR = "application/x-tar"


class PathStatPublic(BaseModel):
    name: str
    type: Annotated[str, Field(description="file, directory, symlink, fifo, device, socket")]
    size: int
    mode: Annotated[str, Field(description="Permission bits in octal, e.g. `0644`.")]
    mtime: datetime
    link_target: Annotated[str, Field(description="A symlink's target, else empty.")]

    @classmethod
    def from_stat(cls, path_stat: PathStat) -> PathStatPublic:
        mode = path_stat.mode
        kinds = (
            (stat.S_ISDIR, "directory"),
            (stat.S_ISLNK, "symlink"),
            (stat.S_ISFIFO, "fifo"),
            (stat.S_ISSOCK, "socket"),
            (stat.S_ISCHR, "device"),
            (stat.S_ISBLK, "device"),
        )
        kind = next((name for test, name in kinds if test(mode)), "file")
        return cls(
            name=path_stat.name,
            type=kind,
            size=path_stat.size,
            mode=f"{stat.S_IMODE(mode):04o}",
            mtime=timeutil.rfc3339_nano(path_stat.mtime_ns),  # type: ignore[arg-type]
            link_target=path_stat.link_target,
        )


class ArchivePut(BaseModel):
    written: Annotated[int, Field(description="Archive members written.")]


@router.get(
    "/{ref}/archive",
    response_class=StreamingResponse,
    responses={**NOT_FOUND, **MISSING, 200: {"content": {TAR: {}}}},
)
def get_archive(ref: str, path: PathQuery, runtime: RuntimeDep) -> StreamingResponse:
    """A tar of the file or directory at `path` (`404` if nothing is there,
    `409` unless the container runs)."""
    _, chunks = runtime.archive_read(ref, path)
    return StreamingResponse(chunks, media_type=TAR)


@router.get("/{ref}/archive/stat", responses={**NOT_FOUND, **MISSING})
def stat_archive_path(ref: str, path: PathQuery, runtime: RuntimeDep) -> PathStatPublic:
    """What is at `path` in the container."""
    return PathStatPublic.from_stat(runtime.archive_stat(ref, path))


@router.put(
    "/{ref}/archive",
    responses={
        **MISSING,
        400: {"model": ErrorDetail, "description": "Not a tar, or a member leads out."},
    },
)
async def put_archive(
    ref: str,
    path: PathQuery,
    request: Request,
    runtime: RuntimeDep,
    copy_uid_gid: Annotated[
        bool, Query(description="Keep the archive's owners (else the container's root).")
    ] = False,
) -> ArchivePut:
    """Unpack the body (a tar, or a compressed tar) into the directory at `path`."""
    body = await spooled_body(request)
    try:
        written = await run_in_threadpool(
            runtime.archive_extract, ref, path, body, False, copy_uid_gid
        )
    finally:
        body.close()
    return ArchivePut(written=written)


class ChangePublic(BaseModel):
    path: str
    kind: Annotated[str, Field(description="added, modified or deleted")]


@router.get("/{ref}/changes", responses={**NOT_FOUND, **CONFLICT})
def container_changes(ref: str, runtime: RuntimeDep) -> list[ChangePublic]:
    """What the container changed in its root (its writable layer), by path;
    `409` for the `host` image, which has no writable layer."""
    return [ChangePublic(path=c.path, kind=c.kind.name) for c in runtime.changes(ref)]


@router.get(
    "/{ref}/export",
    response_class=StreamingResponse,
    responses={**NOT_FOUND, **CONFLICT, 200: {"content": {TAR: {}}}},
)
def export_container(ref: str, runtime: RuntimeDep) -> StreamingResponse:
    """Its root (image plus writable layer, without mounts) as a tar, running or not."""
    return StreamingResponse(runtime.export(ref), media_type=TAR)


@router.post(
    "/{ref}/commit",
    status_code=201,
    responses={**NOT_FOUND, **CONFLICT, 413: {"model": ErrorDetail, "description": "Too large."}},
)
def commit_container(
    ref: str,
    runtime: RuntimeDep,
    name: Annotated[str, Query(pattern=IMAGE_REF_PATTERN, description="The new image's name.")],
    pause: Annotated[bool, Query(description="Pause a running container meanwhile.")] = True,
) -> ImagePublic:
    """A new image of the container's root as it is now (image + writable
    layer); `409` when the name is taken or for the `host` image."""
    return ImagePublic.from_image(runtime.commit(ref, name, pause))
