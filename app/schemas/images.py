"""The image model, ``ImagePublic``, and the error body ``ErrorDetail``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
)

from runtime.images import Image
from runtime.images.oci import ImageConfig


class ErrorDetail(BaseModel):
    detail: Any


class ImageConfigPublic(BaseModel):
    """A pulled image's config: the defaults of the containers made from it."""

    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    exposed_ports: list[str]
    volumes: list[str]
    labels: dict[str, str]
    stop_signal: str
    healthcheck: list[str] | None = Field(
        default=None, description="The HEALTHCHECK's test (`CMD ...`, `CMD-SHELL ...`, `NONE`)."
    )
    architecture: str
    os: str

    @classmethod
    def from_config(cls, config: ImageConfig) -> ImageConfigPublic:
        return cls(
            entrypoint=list(config.entrypoint) if config.entrypoint is not None else None,
            cmd=list(config.cmd) if config.cmd is not None else None,
            env=list(config.env),
            working_dir=config.working_dir,
            user=config.user,
            exposed_ports=list(config.exposed_ports),
            volumes=list(config.volumes),
            labels=dict(config.labels),
            stop_signal=config.stop_signal,
            healthcheck=list(config.healthcheck.test) if config.healthcheck else None,
            architecture=config.architecture,
            os=config.os,
        )


class ImagePublic(BaseModel):
    """An image: a read-only root filesystem containers start from."""

    name: Annotated[
        str,
        Field(
            description="A built-in or imported image's name (`busybox`), a pulled one's "
            "first tag (`localhost:5000/app:1`), or its short id when it has none."
        ),
    ]
    builtin: Annotated[bool, Field(description="`host` and `busybox`; they cannot be deleted.")]
    kind: Annotated[str, Field(description="`builtin`, `imported` (a tarball) or `pulled`.")] = (
        "imported"
    )
    id: Annotated[str | None, Field(description="A pulled image's id: its config's digest.")] = None
    tags: list[str] = []
    digests: Annotated[
        list[str], Field(description="Repo digests: `name@sha256:…` of the manifest pulled.")
    ] = []
    layers: Annotated[list[str], Field(description="Diff ids of its layers, bottom first.")] = []
    config: ImageConfigPublic | None = None
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
            kind=image.kind,
            id=image.id,
            tags=list(image.tags),
            digests=list(image.digests),
            layers=list(image.diff_ids),
            config=ImageConfigPublic.from_config(image.config) if image.config else None,
        )


class RegistryAuth(BaseModel):
    """Credentials for one pull; never logged nor recorded."""

    username: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1, repr=False)]


class ImagePull(BaseModel):
    """``POST /images/pull``: what to pull, with credentials if the registry wants them."""

    reference: Annotated[
        str,
        Field(
            min_length=1,
            description="`[registry[:port]/][namespace/]name[:tag][@sha256:…]`; "
            "`docker.io`, `library/` and `latest` by default.",
            examples=["busybox", "localhost:5000/app:1"],
        ),
    ]
    auth: RegistryAuth | None = None


class ImageTag(BaseModel):
    """``POST /images/{ref}/tag``: the new name."""

    tag: Annotated[str, Field(min_length=1, examples=["localhost:5000/app:2"])]
