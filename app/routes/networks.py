"""``/networks``: create, list, inspect and remove bridge networks
(docs/networking.md); the built-ins ``none``, ``host`` and ``bridge`` are
listed and cannot be removed.  ``/containers/{id}/networks``: connect a
created or running container to one more network, disconnect it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.deps import RuntimeDep
from app.routes.responses import BAD_BODY, SERVICE_ERRORS, Responses
from app.schemas import ErrorDetail
from app.schemas.containers import ContainerPublic
from app.schemas.networks import NetworkConnect, NetworkCreate, NetworkPublic

router = APIRouter(prefix="/networks", tags=["networks"])
endpoints = APIRouter(
    prefix="/containers/{ref}/networks", tags=["networks"], responses=SERVICE_ERRORS
)

NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "No such network."}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **BAD_BODY,
        409: {
            "model": ErrorDetail,
            "description": "The name is taken, or the subnet overlaps a network or a host route.",
        },
    },
)
def create_network(body: NetworkCreate, runtime: RuntimeDep) -> NetworkPublic:
    """A user bridge network; its subnet is a free one of Docker's pools unless given."""
    record = runtime.create_network(
        body.name,
        body.subnet,
        body.gateway,
        body.internal,
        None,
        body.ip_range,
        body.aux_addresses,
    )
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


CONNECT_ERRORS: Responses = {
    **BAD_BODY,
    404: {"model": ErrorDetail, "description": "No such container or network."},
    409: {
        "model": ErrorDetail,
        "description": "Already connected, or the static address is in use.",
    },
}


@endpoints.post("", responses=CONNECT_ERRORS)
def connect_network(ref: str, body: NetworkConnect, runtime: RuntimeDep) -> ContainerPublic:
    """One more network (`eth1`, …) in a created or running container, its address,
    names and /etc/hosts line made before the call returns; an exited one gets it at
    its next start."""
    record = runtime.connect_network(ref, body.network, tuple(body.aliases), body.to_runtime())
    return ContainerPublic.from_record(record)


@endpoints.delete("/{network}", status_code=status.HTTP_204_NO_CONTENT, responses=CONNECT_ERRORS)
def disconnect_network(
    ref: str,
    network: str,
    runtime: RuntimeDep,
    force: Annotated[
        bool, Query(description="Forget the endpoint even if its interface cannot be removed.")
    ] = False,
) -> Response:
    """Its interface on that network removed, the address and names freed."""
    runtime.disconnect_network(ref, network, force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
