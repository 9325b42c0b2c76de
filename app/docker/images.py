"""``/images``: what a Docker client needs to find the local images.

Pulling is out of scope (no network traffic beyond loopback), so
``POST /images/create`` answers with an error the CLI prints as it is.
Until the image store exists, the one image is ``host``: the host's own
root filesystem, which the core runs containers in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.views import image_id
from runtime import Runtime

router = APIRouter(tags=["docker images"])

HOST_IMAGE = "host"
_REGISTRIES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def normalize(name: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox``; other tags are kept."""
    for registry in _REGISTRIES:
        if name.startswith(registry):
            name = name[len(registry) :]
            break
    name = name.removeprefix("library/")
    return name.removesuffix(":latest")


def known_images(runtime: Runtime) -> list[str]:
    return [HOST_IMAGE]


def resolve(runtime: Runtime, name: str) -> str:
    """The local image a client means, or Docker's 404 (which makes the CLI try a pull)."""
    local = normalize(name)
    if local not in known_images(runtime):
        raise DockerError(404, f"No such image: {name}")
    return local


def _tags(name: str) -> list[str]:
    return [name if ":" in name else f"{name}:latest"]


def image_json(name: str) -> dict[str, Any]:
    return {
        "Id": image_id(name),
        "RepoTags": _tags(name),
        "RepoDigests": [],
        "Parent": "",
        "Comment": "",
        "Created": "1970-01-01T00:00:00Z",
        "Config": {"Cmd": None, "Env": [], "Entrypoint": None, "WorkingDir": "", "Labels": {}},
        "Architecture": "amd64",
        "Os": "linux",
        "Size": 0,
        "RootFS": {"Type": "layers", "Layers": []},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


@router.get("/images/json")
def list_images(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [
        {
            "Id": image_id(name),
            "ParentId": "",
            "RepoTags": _tags(name),
            "RepoDigests": [],
            "Created": 0,
            "Size": 0,
            "SharedSize": -1,
            "Labels": {},
            "Containers": -1,
        }
        for name in known_images(runtime)
    ]


@router.get("/images/{name:path}/json")
def inspect_image(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    return image_json(resolve(runtime, name))


@router.post("/images/create")
def pull_image(
    from_image: Annotated[str, Query(alias="fromImage")] = "",
    tag: str = "",
) -> None:
    """Always an error: images are imported, never pulled."""
    name = normalize(f"{from_image}:{tag}" if tag else from_image) or "NAME"
    raise DockerError(
        501, f"pulling is not supported; import the image with POST /images?name={name}"
    )
