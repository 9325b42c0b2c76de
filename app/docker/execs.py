"""``docker exec``: ``POST /containers/{id}/exec``, ``/exec/{id}/start|json|resize``.

Docker creates an exec first and starts it later, and so does the runtime:
``create`` records the exec (``Runtime.create_exec``, status ``created``),
``start`` launches it (``Runtime.start_exec``, once), ``json`` reads its
record.  The Docker id is the runtime's exec id, so an exec survives a
restart of the service between any two of these calls.  Which streams the
client attaches (``AttachStdout``/``AttachStderr``) and its ``ConsoleSize``
are the client's, kept in memory (``Attached``): after a restart both
streams are attached and the terminal starts at the default size.

State is the runtime's to check (a second start, a container that does not
run: ``InvalidState``; an unknown id: ``NotFound``), mapped by the one table
(app/errors.py).

``start`` is hijacked like attach (``Upgrade: tcp``, app/upgrade.py): the
exec's output from its first byte, framed as logs are (raw when the start body says
``Tty``, as in Docker, whatever the exec was created with), its
stdin from the client's bytes (closed at the client's end of input), and the
end of the stream once it has exited.  With ``Detach`` it is a plain POST.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, WebSocket, status
from fastapi.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from app import commands, upgrade
from app.deps import RuntimeDep
from app.docker import detach, errors, models, streams
from app.docker.attach import Input, pump
from app.docker.errors import DockerError
from app.errors import docker_message
from runtime import RuntimeFailure
from runtime.spec import Status

router = APIRouter(tags=["docker exec"])

#: ``ExitCode`` of an exec whose command could not be started.
EXEC_FAILED = 126


@dataclass(frozen=True)
class Client:
    """What the client said at create that the record does not keep: the
    streams it attaches, its terminal's size (``ConsoleSize``) and its TTY's
    detach keys (``DetachKeys``)."""

    stdout: bool = True
    stderr: bool = True
    tty_size: tuple[int, int] | None = None
    detach_keys: bytes = detach.keys(detach.DEFAULT)


class Attached:
    """Exec id -> its ``Client``; an exec made before a restart attaches
    both streams and starts at the default size (the CLI resizes it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}

    def add(self, exec_id: str, client: Client) -> None:
        with self._lock:
            self._clients[exec_id] = client

    def get(self, exec_id: str) -> Client:
        with self._lock:
            return self._clients.get(exec_id, Client())


_ATTACHED_LOCK = threading.Lock()


def _attached(connection: HTTPConnection) -> Attached:
    state = connection.app.state
    with _ATTACHED_LOCK:
        attached: Attached | None = getattr(state, "docker_exec_streams", None)
        if attached is None:
            attached = state.docker_exec_streams = Attached()
    return attached


@router.post("/containers/{ref}/exec", status_code=status.HTTP_201_CREATED)
def create_exec(
    ref: str,
    runtime: RuntimeDep,
    connection: HTTPConnection,
    config: Annotated[models.ExecConfig, Body()],
) -> dict[str, str]:
    request = commands.docker_exec_request(config)
    keys = detach.keys(config.DetachKeys or detach.DEFAULT)
    record = runtime.create_exec(ref, request)
    client = Client(config.AttachStdout, config.AttachStderr, request.tty_size, keys)
    _attached(connection).add(record.id, client)
    return {"Id": record.id}


def _console_size(body: models.ExecStart | None) -> tuple[int, int] | None:
    size = body.ConsoleSize if body is not None else None
    if size and len(size) == 2 and all(size):
        return size[0], size[1]
    return None


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
    size = _console_size(body) or _attached(connection).get(exec_id).tty_size
    runtime.start_exec(exec_id, size)
    return Response(status_code=status.HTTP_200_OK)


def _raw_stream(ws: WebSocket, exec_tty: bool) -> bool:
    """Raw output or frames: the start body's ``Tty`` decides, not the exec's, as in
    Docker (moby's postContainerExecStart frames unless the start says Tty), so a
    client that starts a TTY exec without ``Tty`` (docker-py's ``exec_start``
    default) gets the frames it parses.  No body (or a bad one): the exec's."""
    raw = ws.scope.get("extensions", {}).get(upgrade.BODY, b"")
    try:
        body = models.ExecStart.model_validate_json(raw) if raw else None
    except ValueError:
        body = None
    return exec_tty if body is None else body.Tty


@router.websocket("/exec/{exec_id}/start")
async def start_attached(ws: WebSocket, exec_id: str, runtime: RuntimeDep) -> None:
    # The process starts only after the 101 has gone out, as in Docker: a
    # client that reads the 101 through a buffered reader and then switches to
    # the bare socket (docker-py) would otherwise lose output that arrived
    # with the headers.  What can be refused is refused before, as HTTP.
    try:
        record = await run_in_threadpool(runtime.check_exec_start, exec_id)
    except RuntimeFailure as err:
        await ws.send_denial_response(errors.runtime_error(err))
        return
    tty = _raw_stream(ws, record.spec.tty)
    client = _attached(ws).get(record.id)
    content_type = streams.RAW if tty else streams.MULTIPLEXED
    await ws.accept(headers=[(b"content-type", content_type.encode())])
    try:
        record = await run_in_threadpool(runtime.start_exec, record.id, client.tty_size)
        wanted = [n for n, on in (("stdout", client.stdout), ("stderr", client.stderr)) if on]
        chunks = await run_in_threadpool(runtime.exec_log_chunks, record.id, wanted)
        target = None
        if record.spec.stdin or record.spec.tty:
            target = await run_in_threadpool(runtime.attach_target, "exec", record.id)
    except RuntimeFailure as err:
        # Too late for a status code (the container exited in between): the
        # reason goes down the stream, as Docker writes it.
        text = f"{docker_message(err)}\n".encode()
        await ws.send_bytes(text if tty else streams.frame("stderr", text))
        await ws.close()
        return
    gone = asyncio.Event()
    escape = detach.Escape(client.detach_keys) if record.spec.tty else None
    reader = asyncio.create_task(Input(runtime, target, True, escape).run(ws, gone))
    try:
        await pump(ws, streams.encode(chunks, tty), gone)
    except WebSocketDisconnect:
        return
    finally:
        if not reader.done():
            reader.cancel()
    await ws.close()


@router.get("/exec/{exec_id}/json")
def inspect_exec(exec_id: str, runtime: RuntimeDep, connection: HTTPConnection) -> dict[str, Any]:
    """The exec's record, as Docker shows it (``ExitCode`` null until it has exited)."""
    record = runtime.get_exec(exec_id)
    running = record.status == Status.running
    exit_code = None
    if record.status == Status.exited:
        exit_code = -1 if record.exit_code is None else record.exit_code
        if record.error and record.exit_code is not None:
            # The command never ran (not found, not executable, a setup step
            # failed): Docker's exec then ends with 126 (moby daemon/exec.go
            # sets it when the runtime's exec fails), whatever the reason.
            exit_code = EXEC_FAILED
    spec = record.spec
    client = _attached(connection).get(record.id)
    return {
        "ID": record.id,
        "Running": running,
        "ExitCode": exit_code,
        "ProcessConfig": {
            "tty": spec.tty,
            "entrypoint": spec.command[0],
            "arguments": list(spec.command[1:]),
            "privileged": False,
            "user": spec.user or "",
        },
        "OpenStdin": spec.stdin,
        "OpenStderr": client.stderr,
        "OpenStdout": client.stdout,
        "CanRemove": False,
        "ContainerID": record.container_id,
        "DetachKeys": "",
        "Pid": record.pid if running and record.pid else 0,
    }


@router.post("/exec/{exec_id}/resize")
def resize_exec(
    exec_id: str,
    runtime: RuntimeDep,
    h: Annotated[int, Query(ge=0, le=65535)] = 0,
    w: Annotated[int, Query(ge=0, le=65535)] = 0,
) -> Response:
    """TIOCSWINSZ on its terminal; without a TTY, or before it runs, nothing to resize."""
    record = runtime.get_exec(exec_id)
    if record.spec.tty and h and w and record.status == Status.running:
        runtime.resize(runtime.attach_target("exec", record.id), h, w)
    return Response(status_code=status.HTTP_200_OK)
