"""``/images``: list, inspect, import (a tar stream) and delete images.

The import handler is ``async`` so that it can read the body with
``request.stream()`` chunk by chunk; every chunk is handed to the runtime's
import job in a worker thread, so the body goes to disk as it arrives and is
never whole in memory.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from app.deps import RuntimeDep
from app.schemas import IMAGE_REF_PATTERN, ErrorDetail, ImagePublic
from app.uploads import import_body

router = APIRouter(prefix="/images", tags=["images"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "No such image."}}


@router.get("")
def list_images(runtime: RuntimeDep) -> list[ImagePublic]:
    """All images: `host` first, then by name."""
    return [ImagePublic.from_image(i) for i in runtime.list_images()]


@router.get("/{name:path}", responses=NOT_FOUND)
def get_image(name: str, runtime: RuntimeDep) -> ImagePublic:
    """One image; Docker references work (`docker.io/library/busybox:latest` is `busybox`)."""
    return ImagePublic.from_image(runtime.get_image(name))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": ErrorDetail, "description": "Not a tar archive, or a hostile one."},
        409: {"model": ErrorDetail, "description": "An image of that name exists."},
        413: {"model": ErrorDetail, "description": "Over the service's size cap."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_image(
    request: Request,
    runtime: RuntimeDep,
    name: Annotated[
        str,
        Query(
            description="The new image's name, e.g. `mybox`.",
            json_schema_extra={"pattern": IMAGE_REF_PATTERN},
        ),
    ],
) -> ImagePublic:
    """Import a root filesystem from a tar or tar.gz body (`tar -C rootfs -c .`, `docker export`).

    Names that are absolute or contain `..`, symlinks that climb out of the
    tree, writes through symlinks, hard links to files outside the archive
    and device nodes are refused with `400` and the member's name; nothing of
    a refused import is kept.
    """
    image = await import_body(runtime, name, request)
    return ImagePublic.from_image(image)


@router.delete(
    "/{name:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        403: {"model": ErrorDetail, "description": "A built-in image."},
        409: {"model": ErrorDetail, "description": "Containers use it."},
    },
)
def delete_image(name: str, runtime: RuntimeDep) -> Response:
    """Delete an imported image (`409` while any container, even an exited one, uses it)."""
    runtime.delete_image(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
