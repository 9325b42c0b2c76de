"""The image model, ``ImagePublic``, and the error body ``ErrorDetail``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
)

from runtime.images import Image
from runtime.images.store import NAME_PATTERN as IMAGE_NAME_PATTERN


class ErrorDetail(BaseModel):
    detail: Any


class ImagePublic(BaseModel):
    """An image: a read-only root filesystem containers start from."""

    name: Annotated[str, Field(pattern=IMAGE_NAME_PATTERN)]
    builtin: Annotated[bool, Field(description="`host` and `busybox`; they cannot be deleted.")]
    created_at: datetime | None
    size_bytes: Annotated[int | None, Field(description="Bytes of regular files; null for `host`.")]
    files: Annotated[int | None, Field(description="Number of entries; null for `host`.")]
    contents: Annotated[
        list[str] | None,
        Field(
            description="For `host`, what its view of the host holds: the host directories "
            "bound read-only (from `/etc` only what every user may read), the usr-merge "
            "links, the empty directories of its own; null for other images."
        ),
    ] = None

    @classmethod
    def from_image(cls, image: Image) -> ImagePublic:
        return cls(
            name=image.name,
            builtin=image.builtin,
            created_at=image.created_at,  # type: ignore[arg-type]
            size_bytes=image.size_bytes,
            files=image.files,
            contents=list(image.contents) if image.contents is not None else None,
        )
