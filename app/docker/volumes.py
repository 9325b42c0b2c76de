"""Docker's ``/volumes``: create, list, inspect, remove, prune, over the
runtime's ``VolumeStore`` (runtime/volumes.py), in Docker's shapes.

Only the ``local`` driver exists; ``DriverOpts`` (``type=nfs``, ...) are
refused with a 400 naming them, never dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, ConfigDict

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.params import DockerBool, parse_filters
from app.routes.volumes import labels_match
from runtime.errors import NotFound
from runtime.options import LOCAL_DRIVER
from runtime.volumes import Volume, VolumeStore, check_name

router = APIRouter(tags=["docker volumes"])

FILTERS = {"name", "label", "dangling", "driver"}


class VolumeConfig(BaseModel):
    """The body of ``POST /volumes/create``."""

    model_config = ConfigDict(extra="allow")

    Name: str = ""
    Driver: str = "local"
    DriverOpts: dict[str, str] | None = None
    Labels: dict[str, str] | None = None


def volume_view(volume: Volume, usage: tuple[int, int] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Name": volume.name,
        "Driver": "local",
        "Mountpoint": volume.path,
        "CreatedAt": volume.created_at,
        "Labels": dict(volume.labels),
        "Scope": "local",
        "Options": {},
    }
    if usage is not None:
        view["UsageData"] = {"Size": usage[0], "RefCount": usage[1]}
    return view


@router.post("/volumes/create", status_code=status.HTTP_201_CREATED)
def create_volume(runtime: RuntimeDep, config: VolumeConfig = Body()) -> dict[str, Any]:  # noqa: B008
    if config.Driver not in ("", LOCAL_DRIVER):
        # Docker: the plugin is not found, a 404 (docker-py's NotFound).
        raise NotFound("volume plugin", config.Driver)
    if config.DriverOpts:
        raise DockerError(400, "unsupported option: DriverOpts (only plain local volumes)")
    if config.Name:
        check_name(config.Name, "Name")
    volume, _ = runtime.volumes.create(config.Name or None, config.Labels or {})
    return volume_view(volume)


def _listed(store: VolumeStore, volume: Volume, wanted: dict[str, list[str]]) -> bool:
    if wanted.get("name") and not any(n in volume.name for n in wanted["name"]):
        return False
    if wanted.get("driver") and "local" not in wanted["driver"]:
        return False
    if not labels_match(volume.labels, wanted.get("label", [])):
        return False
    for dangling in wanted.get("dangling", []):
        if (dangling.lower() in ("1", "true")) == bool(store.users(volume.name)):
            return False
    return True


@router.get("/volumes")
def list_volumes(runtime: RuntimeDep, filters: str | None = None) -> dict[str, Any]:
    wanted = parse_filters(filters)
    if set(wanted) - FILTERS:
        raise DockerError(400, f"unsupported volume filter(s): {sorted(set(wanted) - FILTERS)}")
    store = runtime.volumes
    return {
        "Volumes": [volume_view(v) for v in store.list() if _listed(store, v, wanted)],
        "Warnings": [],
    }


@router.get("/volumes/{name}")
def inspect_volume(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    return volume_view(runtime.volumes.get(name))


@router.delete("/volumes/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_volume(name: str, runtime: RuntimeDep, force: DockerBool = False) -> Response:
    """409 while a container uses it; ``force`` only forgives a missing one."""
    try:
        runtime.volumes.remove(name)
    except NotFound:
        if not force:
            raise
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/volumes/prune")
def prune_volumes(runtime: RuntimeDep, filters: str | None = None) -> dict[str, Any]:
    """Anonymous unused volumes; named ones too with the ``all`` filter (API 1.42+)."""
    wanted = parse_filters(filters)
    if set(wanted) - {"label", "all"}:
        raise DockerError(400, "unsupported prune filter: only label and all")
    all_named = any(v.lower() in ("1", "true") for v in wanted.get("all", []))
    labels = wanted.get("label", [])
    removed = runtime.volumes.prune(lambda v: not labels_match(v.labels, labels), all_named)
    return {
        "VolumesDeleted": [v.name for v, _ in removed],
        "SpaceReclaimed": sum(size for _, size in removed),
    }
