"""Docker's lifecycle verbs over the runtime's (runtime/lifecycle.py).

POST /containers/{id}/restart?t=     204
POST /containers/{id}/rename?name=   204; 409 when the name is taken
POST /containers/{id}/pause|unpause  204; 409 unless running / paused
POST /containers/{id}/update         {"Warnings": []}: Memory, NanoCpus,
                                     CpuQuota/CpuPeriod, PidsLimit, CpuShares,
                                     MemoryReservation, RestartPolicy; other
                                     fields set to something else: 400
GET  /containers/{id}/top?ps_args=   {"Titles", "Processes"}
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.models import DockerHostConfig, restart_policy
from app.docker.params import stop_grace
from runtime.spec import InvalidField, Limits, RestartPolicy

router = APIRouter(tags=["docker containers"])

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
#: What ``docker update`` sends that we change; the rest of its body must
#: be unset or zero (the CLI sends every field, most of them zero).
UPDATE_FIELDS = {"Memory", "NanoCpus", "CpuQuota", "CpuPeriod", "PidsLimit"}
#: And the tuning knobs it changes (runtime/lifecycle.py ``UPDATABLE_TUNING``).
UPDATE_TUNING = {"CpuShares": "cpu_shares", "MemoryReservation": "memory_reservation_bytes"}


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/containers/{ref}/restart", status_code=status.HTTP_204_NO_CONTENT)
def restart_container(
    ref: str,
    runtime: RuntimeDep,
    t: Annotated[int | None, Query(ge=-1, le=3600)] = None,
    signal: str = "",
) -> Response:
    """Stop (SIGTERM, SIGKILL after ``t`` s), then start again."""
    runtime.restart(ref, stop_grace(t, signal))
    return _no_content()


@router.post("/containers/{ref}/rename", status_code=status.HTTP_204_NO_CONTENT)
def rename_container(ref: str, runtime: RuntimeDep, name: str = "") -> Response:
    if not name:
        raise DockerError(400, "Neither old nor new names may be empty")
    if not NAME_RE.match(name) or len(name) > 128:
        raise DockerError(
            400, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    runtime.rename(ref, name.lstrip("/"))
    return _no_content()


@router.post("/containers/{ref}/pause", status_code=status.HTTP_204_NO_CONTENT)
def pause_container(ref: str, runtime: RuntimeDep) -> Response:
    runtime.pause(ref)
    return _no_content()


@router.post("/containers/{ref}/unpause", status_code=status.HTTP_204_NO_CONTENT)
def unpause_container(ref: str, runtime: RuntimeDep) -> Response:
    runtime.unpause(ref)
    return _no_content()


def _is_unset(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_unset(v) for v in value.values())
    return value in (None, 0, "", [], False)


def update_limits(body: dict[str, Any]) -> Limits:
    """Docker's update body as the ``Limits`` to change; what we cannot
    change is a 400 naming it."""
    # MemorySwap equal to Memory is no swap, which is what a limit means here.
    swap = body.get("MemorySwap")
    if swap and swap == body.get("Memory"):
        body = {k: v for k, v in body.items() if k != "MemorySwap"}
    known = UPDATE_FIELDS | set(UPDATE_TUNING) | {"RestartPolicy"}
    refused = sorted(k for k, v in body.items() if k not in known and not _is_unset(v))
    if refused:
        raise DockerError(400, f"unsupported option(s) for update: {', '.join(refused)}")
    cpus = None
    if body.get("NanoCpus"):
        cpus = body["NanoCpus"] / 1e9
    elif body.get("CpuQuota") and (body.get("CpuQuota") or 0) > 0:
        cpus = body["CpuQuota"] / (body.get("CpuPeriod") or 100_000)
    pids = body.get("PidsLimit") or None
    if pids is not None and pids < 0:
        raise DockerError(400, "unsupported option for update: PidsLimit -1 (no limit)")
    try:
        return Limits(memory_bytes=body.get("Memory") or None, cpus=cpus, pids=pids)
    except InvalidField as err:
        raise DockerError(400, str(err)) from err


def update_extras(body: dict[str, Any]) -> dict[str, Any]:
    """The restart policy (its ``Name`` empty: unchanged, as ``docker update``
    sends it) and the tuning knobs the body sets, as ``Runtime.update``'s
    keyword arguments (none when it sets none)."""
    extras: dict[str, Any] = {}
    policy = body.get("RestartPolicy") or {}
    if not isinstance(policy, dict):
        raise DockerError(400, "invalid RestartPolicy: {Name, MaximumRetryCount}")
    if policy.get("Name"):
        native = restart_policy(DockerHostConfig(RestartPolicy=policy))
        try:
            extras["restart_policy"] = RestartPolicy(**native) if native else RestartPolicy()
        except InvalidField as err:
            raise DockerError(400, str(err)) from err
    tuning = {}
    for field, knob in UPDATE_TUNING.items():
        value = body.get(field)
        if value:
            if not isinstance(value, int) or value < 0:
                raise DockerError(400, f"invalid {field}: a positive number")
            tuning[knob] = value
    if tuning:
        extras["tuning"] = tuning
    return extras


@router.post("/containers/{ref}/update")
def update_container(
    ref: str, runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    runtime.update(ref, update_limits(body), **update_extras(body))
    return {"Warnings": []}


@router.get("/containers/{ref}/top")
def container_top(ref: str, runtime: RuntimeDep, ps_args: str = "") -> dict[str, Any]:
    top = runtime.top(ref, ps_args or None)
    return {"Titles": list(top.titles), "Processes": [list(row) for row in top.processes]}
