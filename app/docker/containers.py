"""``/containers``: Docker's container endpoints over the shared ``Runtime``.

Each handler is one or two runtime calls; what is Docker-specific here is
only the shapes (``views``), the create body (``models``) and the refusals
of what we do not support.  State is the runtime's to check: its errors
become Docker's statuses (304 for "already so", 409 for "not running") in
the one table, app/errors.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from signal import SIGKILL
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app import commands
from app.deps import RuntimeDep
from app.docker import createopts, images, models, networking, streams, views
from app.docker.errors import DockerError
from app.docker.params import DockerBool, parse_filters, parse_time, stop_grace
from runtime import ContainerRecord, RuntimeFailure, timeutil
from runtime.api import RuntimeApi
from runtime.signals import parse_signal
from runtime.spec import Status

router = APIRouter(tags=["docker containers"])

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
#: Seconds a SIGKILL's answer waits for the exit to be recorded.
KILL_WAIT = 10.0


@router.post("/containers/create", status_code=status.HTTP_201_CREATED)
async def create_container(
    runtime: RuntimeDep,
    request: Request,
    config: Annotated[models.ContainerConfig, Body()],
    name: str = "",
    platform: str = "",
) -> dict[str, Any]:
    """Create a container in the ``created`` state: its process waits for ``start``.

    ``async`` with one worker-thread call: FastAPI validates a plain ``def``
    handler's return value in a second worker-thread hop, and ``docker run``
    waits for this answer before anything else."""
    if platform not in ("", "linux", "linux/amd64"):
        raise DockerError(400, f"unsupported platform {platform!r}: only linux/amd64")
    models.refuse_unsupported(config)
    default = networking.default_network(request)

    def create() -> str:
        image = images.resolve(runtime, config.Image)
        request = commands.docker_create_request(config, name, image, default)
        for volume, labels in createopts.volume_labels(config).items():
            runtime.volumes.create(volume, labels)  # Docker makes them so, before the container
        return networking.create_connected(runtime, config, request)

    return {"Id": await run_in_threadpool(create), "Warnings": []}


def _start_error(record: ContainerRecord) -> str:
    # The CLI turns these phrases into its exit status: 127 for "executable
    # file not found", 126 for "permission denied", else 125.
    hint = {127: "executable file not found", 126: "permission denied"}.get(
        record.exit_code or 0, ""
    )
    suffix = f" ({hint})" if hint else ""
    return f"failed to start container {record.id[:12]}: {record.error}{suffix}"


@router.post("/containers/{ref}/start", status_code=status.HTTP_204_NO_CONTENT)
def start_container(ref: str, runtime: RuntimeDep) -> Response:
    """``304`` if it runs already, ``409`` once exited (the runtime says which)."""
    record = runtime.start_container(ref)
    if record.error:
        raise DockerError(400, _start_error(record))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _wait_future(runtime: RuntimeApi, ref: str, condition: str) -> Future[ContainerRecord]:
    record = runtime.get(ref)
    if condition == "removed":
        return runtime.removal_future(record.id)
    if condition == "next-exit":
        # An exited container may be started again (docker start -a waits first).
        return runtime.next_exit_future(record.id)
    if record.status == Status.running:
        return runtime.exit_future(record.id)
    done: Future[ContainerRecord] = Future()
    done.set_result(record)
    return done


@router.post("/containers/{ref}/wait")
async def wait_container(
    ref: str, runtime: RuntimeDep, condition: str = "not-running"
) -> StreamingResponse:
    """Headers at once, the body when the condition is met.

    The CLI sends ``start`` only once this answer's headers have arrived."""
    if condition == "":
        condition = "not-running"
    if condition not in WAIT_CONDITIONS:
        raise DockerError(400, f"invalid condition {condition!r}: one of {WAIT_CONDITIONS}")
    future = await run_in_threadpool(_wait_future, runtime, ref, condition)

    async def body() -> AsyncIterator[bytes]:
        try:
            record = await asyncio.wrap_future(future)
        finally:
            future.cancel()  # the client left: drop the waiter
        result: dict[str, Any] = {"StatusCode": views.exit_code(record)}
        if record.status == Status.exited and record.exit_code is None:
            result["Error"] = {"Message": record.error or "exit status unknown"}
        yield json.dumps(result).encode() + b"\n"

    return StreamingResponse(body(), media_type="application/json")


@router.post("/containers/{ref}/kill", status_code=status.HTTP_204_NO_CONTENT)
def kill_container(ref: str, runtime: RuntimeDep, signal: str = "SIGKILL") -> Response:
    """The signal; with SIGKILL the answer waits (up to ``KILL_WAIT``) for the exit,
    as Docker's does (moby daemon/kill.go: Kill waits for the container to stop),
    so an inspect right after shows it exited with 137."""
    record = runtime.kill(ref, signal or "SIGKILL")
    if parse_signal(signal or "SIGKILL") == SIGKILL:
        try:
            runtime.exit_future(record.id).result(KILL_WAIT)
        except (FutureTimeout, RuntimeFailure):
            pass  # still dying, or gone (auto-removed): the signal was sent
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/containers/{ref}/stop", status_code=status.HTTP_204_NO_CONTENT)
def stop_container(
    ref: str,
    runtime: RuntimeDep,
    t: Annotated[int | None, Query(ge=-1, le=3600)] = None,
    signal: str = "",
) -> Response:
    """The container's stop signal (``StopSignal``, SIGTERM by default), SIGKILL
    after ``t`` seconds (else its ``StopTimeout``, else 10); ``304`` if it is
    not running."""
    runtime.stop(ref, stop_grace(t, signal), only_running=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/containers/{ref}/resize")
def resize_container(
    ref: str,
    runtime: RuntimeDep,
    h: Annotated[int, Query(ge=0, le=65535)] = 0,
    w: Annotated[int, Query(ge=0, le=65535)] = 0,
) -> Response:
    """TIOCSWINSZ on its terminal; without a TTY there is nothing to resize."""
    record = runtime.get(ref)
    if record.spec.tty and h and w and record.status == Status.running:
        runtime.resize(runtime.attach_target("container", record.id), h, w)
    return Response(status_code=status.HTTP_200_OK)


@router.get("/containers/{ref}/json")
def inspect_container(ref: str, runtime: RuntimeDep) -> dict[str, Any]:
    record = runtime.get(ref)
    return views.inspect(record, runtime.health_of(record.id))


def _label_matches(labels: dict[str, str], item: str) -> bool:
    """``k`` (present) or ``k=v`` (equal), as Docker's label filters."""
    key, sep, value = item.partition("=")
    return labels.get(key) == value if sep else key in labels


def _matches(record: ContainerRecord, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            ok = any(record.id.startswith(v) for v in values)
        elif key == "name":
            ok = any(re.search(v, "/" + record.name) for v in values)
        elif key == "status":
            ok = views.state_name(record) in values
        elif key == "exited":
            ok = record.status == Status.exited and str(record.exit_code) in values
        elif key == "ancestor":
            ok = views.image_of(record) in {images.normalize(v) for v in values}
        elif key == "label":
            labels = views.labels_of(record)
            ok = all(_label_matches(labels, item) for item in values)
        else:
            raise DockerError(400, f"invalid filter {key!r}")
        if not ok:
            return False
    return True


@router.get("/containers/json")
def list_containers(
    runtime: RuntimeDep,
    all: DockerBool = False,  # noqa: A002 - Docker's parameter name
    limit: int = -1,
    size: DockerBool = False,
    filters: str | None = None,
) -> list[dict[str, Any]]:
    """Running containers, or ``all``; newest first."""
    wanted = parse_filters(filters)
    records = runtime.list()
    if not all and "status" not in wanted:
        records = [r for r in records if r.status == Status.running]
    records = [r for r in records if _matches(r, wanted)]
    if limit > 0:
        records = records[:limit]
    return [
        views.summary(r, runtime.health_of(r.id) if r.spec.options.healthcheck else None)
        for r in records
    ]


def _timestamp(name: str, value: str) -> int | None:
    """``since``/``until`` in unix ns; ``""`` and ``"0"`` mean unset, as in Docker."""
    if value in ("", "0"):
        return None
    try:
        return timeutil.parse_ns(value)
    except ValueError as err:
        raise DockerError(400, f"invalid {name} {value!r}: {err}") from None


@router.get("/containers/{ref}/logs")
def container_logs(
    ref: str,
    runtime: RuntimeDep,
    stdout: DockerBool = False,
    stderr: DockerBool = False,
    follow: DockerBool = False,
    tail: str = "all",
    since: str = "",
    until: str = "",
    timestamps: DockerBool = False,
) -> StreamingResponse:
    """Framed (8-byte headers) without a TTY, raw with one.

    Without ``timestamps``/``since``/``until``, stdout's bytes come before
    stderr's (the log files do not keep their interleaving); with any of
    them the output goes line by line, each dated by the time the launcher
    saw it written (runtime/logindex.py), the two streams merged by it."""
    if not stdout and not stderr:
        raise DockerError(400, "Bad parameters: you must choose at least one stream")
    if tail in ("all", "", "-1"):
        lines = None
    elif tail.isdigit():
        lines = int(tail)
    else:
        raise DockerError(400, f"invalid tail {tail!r}: a number of lines, or all")
    low, high = _timestamp("since", since), _timestamp("until", until)
    record = runtime.get(ref)
    wanted = [name for name, on in (("stdout", stdout), ("stderr", stderr)) if on]
    tty = record.spec.tty
    media = streams.RAW if tty else streams.MULTIPLEXED
    if timestamps or low is not None or high is not None:
        dated = runtime.log_lines(
            record.id, wanted, tail=lines, follow=follow, since=low, until=high, heartbeat=True
        )
        return StreamingResponse(streams.encode_lines(dated, tty, timestamps), media_type=media)
    chunks = runtime.log_chunks(record.id, wanted, tail=lines, follow=follow, heartbeat=True)
    return StreamingResponse(streams.encode(chunks, tty), media_type=media)


@router.post("/containers/prune")
def prune_containers(runtime: RuntimeDep, filters: str | None = None) -> dict[str, Any]:
    """Remove every exited container; ``label``/``label!`` and ``until``
    (created before: a time or a duration ago) narrow it."""
    wanted = parse_filters(filters)
    if set(wanted) - {"label", "label!", "until"}:
        raise DockerError(400, "unsupported prune filter: only label, label! and until")
    until = [parse_time("until", value) for value in wanted.get("until", [])]
    deleted, reclaimed = [], 0
    for record in runtime.list(status=Status.exited):
        if until and timeutil.parse_ns(record.created_at) >= min(until):
            continue
        labels = views.labels_of(record)
        if not _matches(record, {"label": wanted.get("label", [])}):
            continue
        if any(_label_matches(labels, item) for item in wanted.get("label!", [])):
            continue
        try:
            size = runtime.writable_bytes(record.id)  # Docker counts their writable layers
            runtime.remove(record.id)
        except RuntimeFailure:
            continue  # removed (or restarted) meanwhile
        deleted.append(record.id)
        reclaimed += size
    return {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}


@router.delete("/containers/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def remove_container(
    ref: str,
    runtime: RuntimeDep,
    force: DockerBool = False,
    v: DockerBool = False,
    link: DockerBool = False,
) -> Response:
    """``v`` removes its anonymous volumes too."""
    if link:
        raise DockerError(400, "unsupported option: link (there are no links)")
    runtime.remove(ref, force=force, volumes=v)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
