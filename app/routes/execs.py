"""``/execs``: processes started in running containers (``POST /containers/{ref}/exec``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app import attach, longpoll
from app.deps import RuntimeDep
from app.logquery import LogQuery
from app.routes.containers import SERVICE_ERRORS
from app.schemas import ErrorDetail, ExecPublic

router = APIRouter(prefix="/execs", tags=["execs"], responses=SERVICE_ERRORS)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No exec has this id (or id prefix)."},
    409: {"model": ErrorDetail, "description": "The id prefix matches several execs."},
}


@router.get("/{ref}", responses=NOT_FOUND)
async def get_exec(
    ref: str,
    runtime: RuntimeDep,
    request: Request,
    wait: Annotated[bool, Query(description="Answer only once it has exited.")] = False,
) -> ExecPublic:
    """Status and exit code (`null` while it runs)."""
    if wait:
        record = await longpoll.await_exec_exit(runtime, ref, None, request)
        if record is not None:
            return ExecPublic.from_record(record)
    return ExecPublic.from_record(await run_in_threadpool(runtime.get_exec, ref))


@router.post("/{ref}/wait", responses=NOT_FOUND)
async def wait_exec(
    ref: str,
    runtime: RuntimeDep,
    request: Request,
    timeout: Annotated[
        float | None, Query(gt=0, description="Seconds; answer with the exec as it is then.")
    ] = None,
) -> ExecPublic:
    """Answer once the exec has exited, or when `timeout` passes."""
    record = await longpoll.await_exec_exit(runtime, ref, timeout, request)
    if record is None:  # the client is gone: this answer goes nowhere
        record = await run_in_threadpool(runtime.get_exec, ref)
    return ExecPublic.from_record(record)


@router.get(
    "/{ref}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **NOT_FOUND},
)
def exec_logs(
    ref: str, runtime: RuntimeDep, query: Annotated[LogQuery, Depends()]
) -> StreamingResponse:
    """The exec's own stdout and stderr (with `tty`, all in stdout)."""
    chunks = runtime.exec_logs(ref, **query.options())
    ended = longpoll.exit_of(runtime.exec_exit_future, ref) if query.follow else None
    return StreamingResponse(longpoll.follow(chunks, ended), media_type="text/plain; charset=utf-8")


@router.websocket("/{ref}/attach")
async def attach_exec(
    websocket: WebSocket,
    ref: str,
    runtime: RuntimeDep,
    logs: bool = True,
    lines: bool = False,
    split: bool = False,
) -> None:
    """WebSocket attach to an exec, as for containers."""
    await attach.serve(websocket, runtime, "exec", ref, logs, lines, split)
