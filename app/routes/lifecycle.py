"""``/containers/{ref}/…``: the lifecycle verbs, one runtime call each
(runtime/lifecycle.py).

    POST /restart?timeout=   stop (grace ``timeout``), then start again
    POST /rename?name=       a new unique name (409 when taken)
    POST /pause, /unpause    freeze and thaw its cgroup (409 unless running)
    POST /update             new memory, cpus, pids limits
    GET  /top?ps_args=       ``ps`` of its processes
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import RuntimeDep
from app.routes.containers import CONFLICT, NOT_FOUND, Grace
from app.routes.responses import BAD_BODY, SERVICE_ERRORS
from app.schemas import ContainerPublic
from app.schemas.fields import NAME_PATTERN
from app.schemas.lifecycle import ContainerTop, ContainerUpdate

router = APIRouter(prefix="/containers", tags=["containers"], responses=SERVICE_ERRORS)


@router.post("/{ref}/restart", responses=NOT_FOUND)
def restart_container(ref: str, runtime: RuntimeDep, timeout: Grace = 10) -> ContainerPublic:
    """Stop it (as `stop` does) if it runs, then start it again: the same id,
    writable layer and logs (appended)."""
    return ContainerPublic.from_record(runtime.restart(ref, timeout))


@router.post("/{ref}/rename", responses={**NOT_FOUND, **CONFLICT})
def rename_container(
    ref: str,
    runtime: RuntimeDep,
    name: Annotated[str, Query(pattern=NAME_PATTERN, description="The new, unique name.")],
) -> ContainerPublic:
    """Give the container a new name (`409` when another container has it)."""
    return ContainerPublic.from_record(runtime.rename(ref, name))


@router.post("/{ref}/pause", responses={**NOT_FOUND, **CONFLICT})
def pause_container(ref: str, runtime: RuntimeDep) -> ContainerPublic:
    """Freeze every process of a running container (cgroup freezer); `409`
    unless it runs, or when already paused.  Exec is refused while paused;
    kill and stop thaw it first."""
    return ContainerPublic.from_record(runtime.pause(ref))


@router.post("/{ref}/unpause", responses={**NOT_FOUND, **CONFLICT})
def unpause_container(ref: str, runtime: RuntimeDep) -> ContainerPublic:
    """Thaw a paused container (`409` when it is not paused)."""
    return ContainerPublic.from_record(runtime.unpause(ref))


@router.post("/{ref}/update", responses={**BAD_BODY, **NOT_FOUND, **CONFLICT})
def update_container(ref: str, body: ContainerUpdate, runtime: RuntimeDep) -> ContainerPublic:
    """Change memory, cpus or pids limits; a running container's cgroup at
    once, and the record for its next start.  A memory limit below what it
    uses now is a `422` naming the field."""
    return ContainerPublic.from_record(runtime.update(ref, body.to_limits()))


@router.get("/{ref}/top", responses={**NOT_FOUND, **CONFLICT})
def container_top(
    ref: str,
    runtime: RuntimeDep,
    ps_args: Annotated[
        str | None, Query(max_length=200, description="Options for `ps` (default `-ef`).")
    ] = None,
) -> ContainerTop:
    """The container's processes as `ps` shows them, with host pids (`409` unless it runs)."""
    return ContainerTop.from_top(runtime.top(ref, ps_args))
