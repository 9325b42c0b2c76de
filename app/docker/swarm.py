"""``/swarm``: mydocker is never part of a swarm, and says so as Docker does.

A Docker engine outside a swarm answers ``GET /swarm`` and ``POST /swarm/leave``
with ``503`` (moby's errdefs.Unavailable for "not a swarm manager" / "not part of
a swarm"); clients rely on it: docker-py's ``leave_swarm(force=True)`` treats
that 503 as done, and its network tests call it after each test.  Creating or
joining a swarm is not supported: ``501``.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.docker.errors import DockerError

router = APIRouter(tags=["docker swarm"])

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or '
    '"docker swarm join" to connect this node to swarm and try again.'
)


@router.get("/swarm")
def inspect_swarm() -> None:
    raise DockerError(503, NOT_A_MANAGER)


@router.post("/swarm/leave")
def leave_swarm(force: str = "") -> None:
    raise DockerError(503, "This node is not part of a swarm")


@router.post("/swarm/init")
@router.post("/swarm/join")
def join_swarm() -> None:
    raise DockerError(501, "swarm mode is not supported by mydocker")
