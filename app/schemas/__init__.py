"""Request and response models: the API's contract, and its OpenAPI schema.

``XCreate`` is what a client sends, ``XPublic`` what it gets back.  Every
constraint lives here, so a bad body gets a 422 that names the field before
the runtime sees anything.

    fields       patterns, annotated field types, shared validators, TtySize
    limits       LimitsCreate / LimitsPublic (derived from runtime.spec.Limits),
                 ContainerStats
    containers   ContainerCreate and its mounts, ContainerPublic, the bulk kill
    execs        ExecCreate, ExecPublic
    images       ImagePublic, ErrorDetail
"""

from app.schemas.containers import (
    BindMount,
    ContainerCreate,
    ContainerPublic,
    ContainersKill,
    ContainersKillResult,
    RestartPolicyCreate,
    TmpfsMount,
    VolumeMount,
)
from app.schemas.execs import ExecCreate, ExecPublic
from app.schemas.fields import IMAGE_REF_PATTERN, ContainerStatus, TtySize
from app.schemas.images import ErrorDetail, ImagePublic
from app.schemas.limits import ContainerStats, LimitsCreate, LimitsPublic, limits_public

__all__ = [
    "IMAGE_REF_PATTERN",
    "BindMount",
    "RestartPolicyCreate",
    "VolumeMount",
    "ContainerCreate",
    "ContainerPublic",
    "ContainerStats",
    "ContainerStatus",
    "ContainersKill",
    "ContainersKillResult",
    "ErrorDetail",
    "ExecCreate",
    "ExecPublic",
    "ImagePublic",
    "LimitsCreate",
    "LimitsPublic",
    "TmpfsMount",
    "TtySize",
    "limits_public",
]
