"""``/images``: list, inspect, pull, tag, import (a tar stream) and delete images.

``POST /images/pull`` answers ``201`` with the image once it is pulled, or,
with ``?progress=true``, streams NDJSON: one line per layer step, then the
image (``{"image": …}``) or the error (``{"error", "status_code"}``).

The import handler is ``async`` so that it can read the body with
``request.stream()`` chunk by chunk; every chunk is handed to the runtime's
import job in a worker thread, so the body goes to disk as it arrives and is
never whole in memory.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app import pulls
from app.deps import RuntimeDep
from app.schemas import IMAGE_REF_PATTERN, ErrorDetail, ImagePublic
from app.schemas.images import ImagePull, ImageTag
from app.uploads import import_body, load_body
from runtime.errors import RuntimeFailure
from runtime.images import Image
from runtime.images.reference import parse
from runtime.images.registry import Credentials

router = APIRouter(prefix="/images", tags=["images"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorDetail, "description": "No such image."}}


@router.get("")
def list_images(runtime: RuntimeDep) -> list[ImagePublic]:
    """All images: `host` first, then by name."""
    return [ImagePublic.from_image(i) for i in runtime.list_images()]


@router.post(
    "/pull",
    status_code=status.HTTP_201_CREATED,
    responses={
        **NOT_FOUND,
        403: {"model": ErrorDetail, "description": "The registry refused the credentials."},
        422: {"model": ErrorDetail, "description": "Not a valid reference."},
        502: {"model": ErrorDetail, "description": "The registry failed or does not answer."},
        504: {"model": ErrorDetail, "description": "The registry did not answer in time."},
    },
)
async def pull_image(
    body: ImagePull,
    runtime: RuntimeDep,
    progress: Annotated[
        bool, Query(description="Stream NDJSON progress per layer, then the image.")
    ] = False,
) -> Any:
    """Pull an image from its registry (layers already present are not fetched again)."""
    parse(body.reference, field="reference")  # a bad reference is a 422 before any stream
    creds = Credentials(body.auth.username, body.auth.password) if body.auth else None
    if not progress:
        image = await run_in_threadpool(runtime.pull_image, body.reference, creds)
        return _created(image)
    lines = pulls.progress_lines(runtime, body.reference, creds, pulls.native_step, _final)
    return StreamingResponse(lines, media_type="application/x-ndjson")


def _created(image: Image) -> Response:
    body = ImagePublic.from_image(image).model_dump_json()
    return Response(body, status_code=status.HTTP_201_CREATED, media_type="application/json")


def _final(image: Image | None, error: RuntimeFailure | None) -> dict[str, Any]:
    if error is not None or image is None:
        assert error is not None
        return pulls.native_error(error)
    return {"image": ImagePublic.from_image(image).model_dump(mode="json")}


@router.post("/load", responses={400: {"model": ErrorDetail, "description": "Not an archive."}})
async def load_images(request: Request, runtime: RuntimeDep) -> list[ImagePublic]:
    """Load a `docker save` tarball or an OCI image layout (as a tar): its images and tags."""
    return [ImagePublic.from_image(i) for i in await load_body(runtime, request)]


@router.get("/{name:path}/export", responses=NOT_FOUND)
def export_image(name: str, runtime: RuntimeDep) -> StreamingResponse:
    """A pulled image as a tarball that `docker load` and OCI tools read (both layouts)."""
    chunks = runtime.save_images([name])
    return StreamingResponse(chunks, media_type="application/x-tar")


@router.post("/prune")
def prune_images(runtime: RuntimeDep) -> dict[str, list[str]]:
    """Delete the pulled images no tag names and no container uses; what was freed."""
    return {"deleted": [r.what for r in runtime.prune_images()]}


@router.post(
    "/{name:path}/tag",
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 422: {"model": ErrorDetail, "description": "A bad tag."}},
)
def tag_image(name: str, body: ImageTag, runtime: RuntimeDep) -> ImagePublic:
    """Give a pulled image another name (`localhost:5000/app:2`); a tag moves if it is taken."""
    return ImagePublic.from_image(runtime.tag_image(name, body.tag))


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
def delete_image(
    name: str,
    runtime: RuntimeDep,
    force: Annotated[
        bool, Query(description="Delete an image by id even when several tags name it.")
    ] = False,
) -> Response:
    """Delete a tag (when the image has others), or the image and the layers no
    other image uses (`409` while any container, even an exited one, uses it)."""
    runtime.delete_image(name, force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
