"""``/containers``: thin handlers, one runtime call each.

The runtime blocks, so each handler calls it in one worker thread
(``run_in_threadpool``) from an ``async`` handler: a plain ``def`` handler
with a response model costs a second hop, as FastAPI validates its return
value in a worker thread too.  Only the two that answer a ``Response`` of
their own (delete, logs) stay plain ``def``: FastAPI passes those through.
The two that may wait for a container's exit wait on a future, so a hundred
waiting clients hold no thread (``app/longpoll.py``, which also ends them
when their client goes away); create is ``app/launching.py``.

Every operation documents the statuses it can answer with besides 2xx and
422: 503 when the launcher or the record store cannot be reached, 507 when
the state dir is full (``app/errors.py``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app import attach, launching, longpoll
from app.commands import create_request, exec_request
from app.deps import RuntimeDep
from app.logquery import LogQuery
from app.routes.responses import BAD_BODY, SERVICE_ERRORS, Responses
from app.schemas import (
    ContainerCreate,
    ContainerPublic,
    ContainersKill,
    ContainersKillResult,
    ContainerStats,
    ContainerStatus,
    ErrorDetail,
    ExecCreate,
    ExecPublic,
)
from runtime import Selector
from runtime.exitstatus import signal_name
from runtime.signals import SIGNAL_NAMES, SIGNAL_NUMBERS

#: What ``signal=`` takes in a query: a name or a number, both as text.
SIGNAL_CHOICES = [*SIGNAL_NAMES, *map(str, SIGNAL_NUMBERS)]

router = APIRouter(prefix="/containers", tags=["containers"], responses=SERVICE_ERRORS)

#: The ``timeout`` of stop and restart.
Grace = Annotated[
    float, Query(ge=0, le=3600, description="Grace period in seconds before SIGKILL.")
]

NOT_FOUND: Responses = {
    404: {"model": ErrorDetail, "description": "No container matches the reference."},
    409: {"model": ErrorDetail, "description": "The id prefix matches several containers."},
}
CONFLICT: Responses = {
    409: {
        "model": ErrorDetail,
        "description": "The container is not in a state for this, or the id prefix "
        "matches several containers.",
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **BAD_BODY,
        404: {"model": ErrorDetail, "description": "No such image."},
        409: {"model": ErrorDetail, "description": "The name is taken."},
        413: {"model": ErrorDetail, "description": "The body is larger than --max-body."},
        429: {
            "model": ErrorDetail,
            "description": "--max-containers are running; see Retry-After.",
        },
    },
)
async def create_container(
    spec: ContainerCreate,
    runtime: RuntimeDep,
    request: Request,
    wait: Annotated[bool, Query(description="Answer only once the container has exited.")] = False,
) -> ContainerPublic:
    """Run a command in a new container (new mount, PID, UTS, network and IPC namespaces).

    A command that cannot be executed still gives `201`: the container is
    `exited` with `exit_code` 127 (not found) or 126 (not executable) and
    `error` says why.
    """

    record = await launching.launch(runtime, create_request(spec), wait, request)
    return ContainerPublic.from_record(record)


@router.get("")
async def list_containers(
    runtime: RuntimeDep,
    status: ContainerStatus | None = None,
    name: str | None = None,
) -> list[ContainerPublic]:
    """All containers, newest first; filter by `status` or exact `name`."""
    records = await run_in_threadpool(
        runtime.list, status=status.value if status else None, name=name
    )
    return [ContainerPublic.from_record(r) for r in records]


@router.post(
    "/kill",
    responses={
        **BAD_BODY,
        409: {"model": ErrorDetail, "description": "An id prefix matches several containers."},
    },
)
async def kill_containers(selection: ContainersKill, runtime: RuntimeDep) -> ContainersKillResult:
    """Signal every running container the body selects, in one request.

    Each gets what `POST /containers/{ref}/kill` would send its PID 1.
    Selected containers that are not running are listed in `not_running`,
    not an error.  No route takes `POST /containers/{ref}`, so this path
    cannot shadow a container named `kill` (docs/api.md)."""
    result = await run_in_threadpool(
        runtime.kill_many,
        Selector(
            labels=tuple(selection.labels),
            name_prefix=selection.name_prefix,
            refs=None if selection.ids is None else tuple(selection.ids),
            all=selection.all,
        ),
        selection.signal,
    )
    return ContainersKillResult(
        signal=signal_name(result.signal),
        killed=list(result.killed),
        not_running=list(result.not_running),
        not_found=list(result.not_found),
    )


@router.get("/{ref}", responses=NOT_FOUND)
async def get_container(ref: str, runtime: RuntimeDep) -> ContainerPublic:
    """One container, by id, unique id prefix, or name."""
    return ContainerPublic.from_record(await run_in_threadpool(runtime.get, ref))


@router.get("/{ref}/stats", responses={**NOT_FOUND, **CONFLICT})
async def container_stats(ref: str, runtime: RuntimeDep) -> ContainerStats:
    """Live memory, CPU and process counts of a running container (`409` otherwise)."""
    return ContainerStats(**await run_in_threadpool(runtime.stats, ref))


@router.post("/{ref}/wait", responses=NOT_FOUND)
async def wait_container(
    ref: str,
    runtime: RuntimeDep,
    request: Request,
    timeout: Annotated[
        float | None, Query(gt=0, description="Seconds; answer with the container as it is then.")
    ] = None,
) -> ContainerPublic:
    """Answer once the container has exited, or when `timeout` passes."""
    record = await longpoll.await_exit(runtime, ref, timeout, request)
    if record is None:  # the client is gone: this answer goes nowhere
        record = await run_in_threadpool(runtime.get, ref)
    return ContainerPublic.from_record(record)


@router.post("/{ref}/kill", responses={**NOT_FOUND, **CONFLICT})
async def kill_container(
    ref: str,
    runtime: RuntimeDep,
    signal: Annotated[
        str,
        Query(
            description="Signal name (`SIGTERM`, `TERM`) or number.",
            json_schema_extra={"enum": SIGNAL_CHOICES},
        ),
    ] = "SIGKILL",
) -> ContainerPublic:
    """Send a signal to the container's PID 1.

    PID 1 of a namespace only receives signals it has a handler for
    (SIGKILL always works)."""
    return ContainerPublic.from_record(await run_in_threadpool(runtime.kill, ref, signal))


@router.post("/{ref}/stop", responses=NOT_FOUND)
async def stop_container(ref: str, runtime: RuntimeDep, timeout: Grace = 10) -> ContainerPublic:
    """SIGTERM, then SIGKILL after the grace period; answers once it has exited.

    When PID 1 has no SIGTERM handler the kernel would drop the SIGTERM, so
    SIGKILL is sent at once.  Stopping an exited container changes nothing."""
    return ContainerPublic.from_record(await run_in_threadpool(runtime.stop, ref, timeout))


@router.delete(
    "/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT}
)
def delete_container(
    ref: str,
    runtime: RuntimeDep,
    force: Annotated[bool, Query(description="Kill it first if it is running.")] = False,
    volumes: Annotated[
        bool, Query(description="Remove its anonymous volumes too (named ones stay).")
    ] = False,
) -> Response:
    """Remove the container's record and logs (`409` while it runs unless `force`)."""
    runtime.remove(ref, force=force, volumes=volumes)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{ref}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **NOT_FOUND},
)
def container_logs(
    ref: str, runtime: RuntimeDep, query: Annotated[LogQuery, Depends()]
) -> StreamingResponse:
    """The container's captured stdout and stderr (stdout first, unless dated)."""
    chunks = runtime.logs(ref, **query.options())
    ended = longpoll.exit_of(runtime.exit_future, ref) if query.follow else None
    return StreamingResponse(longpoll.follow(chunks, ended), media_type="text/plain; charset=utf-8")


@router.websocket("/{ref}/attach")
async def attach_container(
    websocket: WebSocket,
    ref: str,
    runtime: RuntimeDep,
    logs: bool = True,
    lines: bool = False,
    split: bool = False,
) -> None:
    """WebSocket: output out (the logs first when `logs`), input and resizes in.

    The frame protocol is in app/attach.py and docs/interactive.md."""
    await attach.serve(websocket, runtime, "container", ref, logs, lines, split)


@router.post(
    "/{ref}/exec",
    status_code=status.HTTP_201_CREATED,
    responses={
        **BAD_BODY,
        **NOT_FOUND,
        **CONFLICT,
        413: {"model": ErrorDetail, "description": "The body is larger than --max-body."},
    },
)
async def create_exec(
    ref: str,
    spec: ExecCreate,
    runtime: RuntimeDep,
    wait: Annotated[bool, Query(description="Answer only once the command has exited.")] = False,
) -> ExecPublic:
    """Start a command inside a running container (`409` when it is not running).

    It joins the container's namespaces and cgroups and sees its root,
    hostname and processes.  A command that cannot be executed still gives
    `201`, with `exit_code` 127/126 and `error`."""
    record = await run_in_threadpool(runtime.exec, ref, exec_request(spec))
    if wait:
        future = await run_in_threadpool(runtime.exec_exit_future, record.id)
        record = await asyncio.wrap_future(future)
    return ExecPublic.from_record(record)


@router.get("/{ref}/execs", responses=NOT_FOUND)
async def list_container_execs(ref: str, runtime: RuntimeDep) -> list[ExecPublic]:
    """The container's execs, oldest first."""
    return [ExecPublic.from_record(r) for r in await run_in_threadpool(runtime.list_execs, ref)]
