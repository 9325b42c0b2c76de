"""``/volumes``: create, list, inspect, remove and prune volumes; thin
handlers over the runtime's ``VolumeStore`` (runtime/volumes.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.deps import RuntimeDep
from app.schemas import ErrorDetail
from app.schemas.volumes import VolumeCreate, VolumePublic, VolumesPruned
from runtime.selection import label_matches

router = APIRouter(prefix="/volumes", tags=["volumes"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "No such volume."}}
LabelQuery = Annotated[
    list[str],
    Query(description="`key` or `key=value`; all must hold (as `docker volume ls --filter`)."),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": VolumePublic, "description": "The volume exists: as it is."}},
)
def create_volume(body: VolumeCreate, runtime: RuntimeDep, response: Response) -> VolumePublic:
    """Make a volume; `200` with the existing one if the name is taken (as Docker)."""
    volume, made = runtime.volumes.create(body.name, body.labels)
    if not made:
        response.status_code = status.HTTP_200_OK
    return VolumePublic.from_volume(volume)


@router.get("")
def list_volumes(runtime: RuntimeDep, label: LabelQuery = []) -> list[VolumePublic]:  # noqa: B006
    """All volumes, by name."""
    return [
        VolumePublic.from_volume(v) for v in runtime.volumes.list() if labels_match(v.labels, label)
    ]


@router.get("/{name}", responses=NOT_FOUND)
def get_volume(name: str, runtime: RuntimeDep) -> VolumePublic:
    """One volume, with the containers that mount it."""
    volume = runtime.volumes.get(name)
    return VolumePublic.from_volume(volume, [r.id for r in runtime.volumes.users(name)])


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorDetail, "description": "A container (of any status) mounts it."},
    },
)
def delete_volume(name: str, runtime: RuntimeDep) -> Response:
    """Remove a volume and its data."""
    runtime.volumes.remove(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/prune")
def prune_volumes(
    runtime: RuntimeDep,
    label: LabelQuery = [],  # noqa: B006
    all: Annotated[bool, Query(description="Named volumes too, not only anonymous ones.")] = False,
) -> VolumesPruned:
    """Remove the volumes no container mounts: anonymous ones, or all with `all`."""
    removed = runtime.volumes.prune(lambda v: not labels_match(v.labels, label), all_named=all)
    return VolumesPruned(
        removed=[v.name for v, _ in removed], space_reclaimed_bytes=sum(s for _, s in removed)
    )


def labels_match(labels: Mapping[str, str], items: list[str]) -> bool:
    return all(label_matches(labels, item) for item in items)
