"""``/images``: the runtime's image store as Docker clients see it.

Pulling is out of scope (no network traffic beyond loopback), so
``POST /images/create?fromImage=`` answers with an error the CLI prints as
it is; ``docker import`` (``fromSrc=-``) is the runtime's import, as the
native ``POST /images?name=`` is.  Names normalise as
the store does (``docker.io/library/busybox:latest`` is ``busybox``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.views import epoch, image_id
from app.uploads import import_body
from runtime.api import RuntimeApi
from runtime.images import Image, normalize_name

router = APIRouter(tags=["docker images"])


def normalize(name: str) -> str:
    """The store's name for a reference; the reference itself if it has none."""
    try:
        return normalize_name(name)
    except ValueError:
        return name


def resolve(runtime: RuntimeApi, name: str) -> Image:
    """The local image a client means, or Docker's 404 (which makes the CLI try a pull)."""
    return runtime.get_image(name)


def summary(image: Image) -> dict[str, Any]:
    return {
        "Id": image_id(image.name),
        "ParentId": "",
        "RepoTags": [f"{image.name}:latest"],
        "RepoDigests": [],
        "Created": epoch(image.created_at),
        "Size": image.size_bytes or 0,
        "SharedSize": -1,
        "Labels": {},
        "Containers": -1,
    }


@router.get("/images/json")
def list_images(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [summary(image) for image in runtime.list_images()]


@router.get("/images/{name:path}/json")
def inspect_image(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    image = resolve(runtime, name)
    return {
        "Id": image_id(image.name),
        "RepoTags": [f"{image.name}:latest"],
        "RepoDigests": [],
        "Parent": "",
        "Comment": "builtin" if image.builtin else "imported",
        "Created": image.created_at or "0001-01-01T00:00:00Z",
        # No image config: the command comes from the create body.
        "Config": {"Cmd": None, "Env": None, "Entrypoint": None, "WorkingDir": "", "Labels": {}},
        "Architecture": "amd64",
        "Os": "linux",
        "Size": image.size_bytes or 0,
        "RootFS": {"Type": "layers", "Layers": []},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


@router.post("/images/create")
async def create_image(
    request: Request,
    runtime: RuntimeDep,
    from_image: Annotated[str, Query(alias="fromImage")] = "",
    from_src: Annotated[str, Query(alias="fromSrc")] = "",
    repo: str = "",
    tag: str = "",
    changes: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """``docker import`` (``fromSrc=-``, the tar in the body) goes to the
    runtime's import; a pull (``fromImage``) is refused: images are imported."""
    if from_src:
        if from_src != "-":
            raise DockerError(
                501, "importing from a URL is not supported; send the tar (fromSrc=-)"
            )
        if any(changes):
            raise DockerError(400, "unsupported option: changes (images carry no config)")
        if tag not in ("", "latest"):
            raise DockerError(400, f"unsupported tag {tag!r}: images have no tags but latest")
        if not repo:
            raise DockerError(400, "give the new image a name (docker import FILE NAME)")
        image = await import_body(runtime, repo, request)
        # The progress stream `docker import` reads; the last status is the id.
        body = json.dumps({"status": image_id(image.name)}) + "\n"
        return Response(content=body, media_type="application/json")
    name = normalize(f"{from_image}:{tag}" if tag else from_image) or "NAME"
    raise DockerError(
        501, f"pulling is not supported; import the image with POST /images?name={name}"
    )


@router.delete("/images/{name:path}")
def remove_image(name: str, runtime: RuntimeDep) -> list[dict[str, str]]:
    """An imported image; built-in ones are a 403, images in use a 409."""
    image = resolve(runtime, name)
    runtime.delete_image(image.name)
    return [{"Untagged": f"{image.name}:latest"}, {"Deleted": image_id(image.name)}]
