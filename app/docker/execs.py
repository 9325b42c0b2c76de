"""``docker exec``: ``POST /containers/{id}/exec``, ``/exec/{id}/start|json|resize``.

Docker creates an exec first and starts it later; the runtime starts one at
once (``Runtime.exec``).  So a created exec lives here, in memory, until its
``start``: then the runtime runs it and the Docker id maps onto the
runtime's exec record.  (A service restart forgets execs created but not
started, and the mapping; the runtime keeps the records.)

``start`` is hijacked like attach (``Upgrade: tcp``, app/upgrade.py): the
exec's output from its first byte, framed as logs are (raw with a TTY), its
stdin from the client's bytes (closed at the client's end of input), and the
end of the stream once it has exited.  With ``Detach`` it is a plain POST.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, WebSocket, status
from fastapi.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from app import commands
from app.deps import RuntimeDep
from app.docker import errors, models, streams
from app.docker.attach import Input, pump
from app.docker.errors import DockerError
from runtime import ContainerRecord, ExecRecord, NotFound, Runtime, RuntimeFailure
from runtime.spec import ExecRequest, Status

router = APIRouter(tags=["docker exec"])


@dataclass
class DockerExec:
    id: str
    container_id: str
    request: ExecRequest
    stdout: bool
    stderr: bool
    runtime_id: str | None = None


class ExecTable:
    """Docker exec ids -> what was asked, and the runtime's exec once started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._execs: dict[str, DockerExec] = {}

    def add(self, entry: DockerExec) -> None:
        with self._lock:
            self._execs[entry.id] = entry

    def get(self, exec_id: str) -> DockerExec:
        with self._lock:
            entry = self._execs.get(exec_id)
        if entry is None:
            raise DockerError(404, f"No such exec instance: {exec_id}")
        return entry

    def claim(self, exec_id: str) -> DockerExec:
        """The exec, once: a second start is a 409, as in Docker."""
        with self._lock:
            entry = self._execs.get(exec_id)
            if entry is None:
                raise DockerError(404, f"No such exec instance: {exec_id}")
            if entry.runtime_id is not None:
                raise DockerError(409, f"exec {exec_id} has already started")
            entry.runtime_id = ""  # claimed; the real id follows
            return entry


_TABLE_LOCK = threading.Lock()


def _table(connection: HTTPConnection) -> ExecTable:
    state = connection.app.state
    with _TABLE_LOCK:
        table: ExecTable | None = getattr(state, "docker_execs", None)
        if table is None:
            table = state.docker_execs = ExecTable()
    return table


@router.post("/containers/{ref}/exec", status_code=status.HTTP_201_CREATED)
def create_exec(
    ref: str,
    runtime: RuntimeDep,
    connection: HTTPConnection,
    config: Annotated[models.ExecConfig, Body()],
) -> dict[str, str]:
    record = _running(runtime, ref)
    entry = DockerExec(
        id=secrets.token_hex(32),
        container_id=record.id,
        request=commands.docker_exec_request(config),
        stdout=config.AttachStdout,
        stderr=config.AttachStderr,
    )
    _table(connection).add(entry)
    return {"Id": entry.id}


def _run(runtime: Runtime, entry: DockerExec) -> ExecRecord:
    try:
        record = runtime.exec(entry.container_id, entry.request)
    except NotFound:
        raise DockerError(404, f"No such container: {entry.container_id}") from None
    entry.runtime_id = record.id
    return record


@router.post("/exec/{exec_id}/start")
def start_detached(
    exec_id: str,
    runtime: RuntimeDep,
    connection: HTTPConnection,
    body: Annotated[models.ExecStart | None, Body()] = None,
) -> Response:
    """Without an upgrade: only ``Detach`` (the output stays in its log files)."""
    if body is None or not body.Detach:
        raise DockerError(400, "exec start without Detach needs Upgrade: tcp (a hijacked stream)")
    _run(runtime, _table(connection).claim(exec_id))
    return Response(status_code=status.HTTP_200_OK)


@router.websocket("/exec/{exec_id}/start")
async def start_attached(ws: WebSocket, exec_id: str, runtime: RuntimeDep) -> None:
    # The process starts only after the 101 has gone out, as in Docker: a
    # client that reads the 101 through a buffered reader and then switches to
    # the bare socket (docker-py) would otherwise lose output that arrived
    # with the headers.  What can be refused is refused before, as HTTP.
    try:
        entry = _table(ws).claim(exec_id)
        await run_in_threadpool(_running, runtime, entry.container_id)
    except DockerError as err:
        await ws.send_denial_response(errors.message(err.status, err.message))
        return
    except RuntimeFailure as err:
        await ws.send_denial_response(errors.message(errors.status_for(err), str(err)))
        return
    tty = entry.request.spec.tty
    content_type = streams.RAW if tty else streams.MULTIPLEXED
    await ws.accept(headers=[(b"content-type", content_type.encode())])
    try:
        record = await run_in_threadpool(_run, runtime, entry)
        wanted = [n for n, on in (("stdout", entry.stdout), ("stderr", entry.stderr)) if on]
        chunks = await run_in_threadpool(runtime.exec_log_chunks, record.id, wanted)
        target = None
        if entry.request.spec.stdin or entry.request.spec.tty:
            target = await run_in_threadpool(runtime.attach_target, "exec", record.id)
    except (DockerError, RuntimeFailure) as err:
        # Too late for a status code (the container exited in between): the
        # reason goes down the stream, as Docker writes it.
        text = f"{err.message if isinstance(err, DockerError) else err}\n".encode()
        await ws.send_bytes(text if tty else streams.frame("stderr", text))
        await ws.close()
        return
    gone = asyncio.Event()
    reader = asyncio.create_task(Input(runtime, target, stdin_once=True).run(ws, gone))
    try:
        await pump(ws, streams.encode(chunks, tty), gone)
    except WebSocketDisconnect:
        return
    finally:
        if not reader.done():
            reader.cancel()
    await ws.close()


def _running(runtime: Runtime, ref: str) -> ContainerRecord:
    """The container, which must be running (``404``/``409`` otherwise)."""
    try:
        record = runtime.get(ref)
    except NotFound:
        raise DockerError(404, f"No such container: {ref}") from None
    if record.status != Status.running:
        raise DockerError(409, f"container {record.id[:12]} is not running")
    return record


def _runtime_record(runtime: Runtime, entry: DockerExec) -> ExecRecord | None:
    if not entry.runtime_id:
        return None
    return runtime.get_exec(entry.runtime_id)


@router.get("/exec/{exec_id}/json")
def inspect_exec(exec_id: str, runtime: RuntimeDep, connection: HTTPConnection) -> dict[str, Any]:
    entry = _table(connection).get(exec_id)
    record = _runtime_record(runtime, entry)
    running = record is not None and record.status != Status.exited
    exit_code = None
    if record is not None and record.status == Status.exited:
        exit_code = -1 if record.exit_code is None else record.exit_code
    spec = entry.request.spec
    return {
        "ID": entry.id,
        "Running": running,
        "ExitCode": exit_code,
        "ProcessConfig": {
            "tty": spec.tty,
            "entrypoint": spec.command[0],
            "arguments": spec.command[1:],
            "privileged": False,
            "user": spec.user or "",
        },
        "OpenStdin": spec.stdin,
        "OpenStderr": entry.stderr,
        "OpenStdout": entry.stdout,
        "CanRemove": False,
        "ContainerID": entry.container_id,
        "DetachKeys": "",
        "Pid": record.pid if record is not None and running and record.pid else 0,
    }


@router.post("/exec/{exec_id}/resize")
def resize_exec(
    exec_id: str,
    runtime: RuntimeDep,
    connection: HTTPConnection,
    h: Annotated[int, Query(ge=0, le=65535)] = 0,
    w: Annotated[int, Query(ge=0, le=65535)] = 0,
) -> Response:
    entry = _table(connection).get(exec_id)
    record = _runtime_record(runtime, entry)
    running = record is not None and record.status == Status.running
    if record is not None and running and entry.request.spec.tty and h and w:
        runtime.resize(runtime.attach_target("exec", record.id), h, w)
    return Response(status_code=status.HTTP_200_OK)
