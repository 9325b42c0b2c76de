"""``/networks``: create, list, inspect and remove bridge networks
(docs/networking.md); the built-ins ``none``, ``host`` and ``bridge`` are
listed and cannot be removed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from app.deps import RuntimeDep
from app.schemas import ErrorDetail
from app.schemas.networks import NetworkCreate, NetworkPublic

router = APIRouter(prefix="/networks", tags=["networks"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "No such network."}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {
            "model": ErrorDetail,
            "description": "The name is taken, or the subnet overlaps a network or a host route.",
        }
    },
)
def create_network(body: NetworkCreate, runtime: RuntimeDep) -> NetworkPublic:
    """A user bridge network; its subnet is a free one of Docker's pools unless given."""
    record = runtime.create_network(body.name, body.subnet, body.gateway, body.internal)
    return NetworkPublic.from_record(record)


@router.get("")
def list_networks(runtime: RuntimeDep) -> list[NetworkPublic]:
    """`none`, `host`, `bridge`, then the user networks, oldest first."""
    return [NetworkPublic.from_record(r) for r in runtime.list_networks()]


@router.get("/{name}", responses=NOT_FOUND)
def get_network(name: str, runtime: RuntimeDep) -> NetworkPublic:
    """One network (by name or id) with its live containers and their addresses."""
    record = runtime.get_network(name)
    return NetworkPublic.from_record(record, runtime.network_containers(record.name))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        403: {"model": ErrorDetail, "description": "A built-in network."},
        409: {"model": ErrorDetail, "description": "Containers are attached to it."},
    },
)
def delete_network(name: str, runtime: RuntimeDep) -> Response:
    runtime.delete_network(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
