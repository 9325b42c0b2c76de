"""The volume models: ``VolumeCreate`` (the body of ``POST /volumes``),
``VolumePublic`` (what the volume routes answer) and the prune's result."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.fields import Labels, check_labels
from runtime.spec import VOLUME_NAME_MAX, VOLUME_NAME_PATTERN
from runtime.volumes import Volume


class VolumeCreate(BaseModel):
    """A named volume to make (an existing one of that name is returned as it is)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "data", "labels": {"app": "db"}}]}
    )

    name: Annotated[
        str | None,
        Field(
            pattern=VOLUME_NAME_PATTERN,
            max_length=VOLUME_NAME_MAX,
            description="`[a-zA-Z0-9][a-zA-Z0-9_.-]+`; omitted: a 64-hex name, anonymous.",
        ),
    ] = None
    labels: Annotated[Labels, Field(description="Free metadata; prune and list filter on it.")] = {}

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)


class VolumePublic(BaseModel):
    """A volume as the service knows it."""

    name: str
    mountpoint: Annotated[str, Field(description="The data directory on the host.")]
    created_at: str
    labels: dict[str, str]
    anonymous: Annotated[
        bool, Field(description="Made for one container (`-v /path`), without a name given.")
    ]
    containers: Annotated[
        list[str] | None, Field(description="Ids of the containers that mount it.")
    ] = None

    @classmethod
    def from_volume(cls, volume: Volume, containers: list[str] | None = None) -> VolumePublic:
        return cls(
            name=volume.name,
            mountpoint=volume.path,
            created_at=volume.created_at,
            labels=dict(volume.labels),
            anonymous=volume.anonymous,
            containers=containers,
        )


class VolumesPruned(BaseModel):
    """What a prune removed."""

    removed: list[str]
    space_reclaimed_bytes: int
