"""The limit models, derived from ``runtime.spec.Limits`` (declared once there).

LimitsCreate    what a create may ask for: each field bounded and described
LimitsPublic    the limits that applied, as the API shows them
ContainerStats  a running container's live counters
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    create_model,
)

from runtime.spec import (
    FRACTIONAL_LIMITS,
    LIMIT_BOUNDS,
    LIMIT_DESCRIPTIONS,
    Limits,
    number,
)


def _limit_type(name: str) -> type:
    """``int`` or ``float``, as the runtime takes the limit (spec.FRACTIONAL_LIMITS)."""
    return float if name in FRACTIONAL_LIMITS else int


def limit_field(name: str) -> Any:
    """A Field bounded and described as ``Limits`` declares ``name``."""
    low, high = LIMIT_BOUNDS[name]
    if name not in FRACTIONAL_LIMITS:
        low, high = int(low), int(high)
    description = LIMIT_DESCRIPTIONS[name]
    return Field(ge=low, le=high, description=f"{description} ({number(low)} to {number(high)}).")


def _limits_model(name: str, doc: str, bounded: bool, config: ConfigDict) -> type[BaseModel]:
    """A pydantic model with one optional field per ``Limits`` field, in its
    order: the limits are declared once, in runtime/spec.py."""
    fields: dict[str, Any] = {
        f.name: (
            Annotated[_limit_type(f.name) | None, limit_field(f.name)]
            if bounded
            else _limit_type(f.name) | None,
            None,
        )
        for f in dataclasses.fields(Limits)
    }
    model: type[BaseModel] = create_model(
        name, __config__=config, __doc__=doc, __module__=__name__, **fields
    )
    return model


if TYPE_CHECKING:
    # Generated below from runtime.spec.Limits; to mypy, models of unknown fields.
    LimitsCreate = BaseModel
    LimitsPublic = BaseModel
else:
    LimitsCreate = _limits_model(
        "LimitsCreate",
        "What the container may take; unset fields take the service's defaults.",
        bounded=True,
        config=ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"memory_bytes": 67108864, "pids": 64, "cpus": 0.5, "timeout_seconds": 5}
                ]
            },
        ),
    )
    LimitsPublic = _limits_model(
        "LimitsPublic",
        "The limits that applied (the request's, then the service's defaults).",
        bounded=False,
        config=ConfigDict(),
    )


#: The names of ``Limits``' fields, every one a number or None.
_LIMIT_NAMES = tuple(field.name for field in dataclasses.fields(Limits))


def limits_public(limits: Limits) -> LimitsPublic:
    """The applied limits as the API shows them.  Read field by field, not
    with ``dataclasses.asdict``, which deep-copies each number: that was half
    the cost of a ``ContainerPublic`` (docs/performance-log.md, "The lean API
    path and the Docker path")."""
    return LimitsPublic(**{name: getattr(limits, name) for name in _LIMIT_NAMES})


class ContainerStats(BaseModel):
    """Live counters of a running container (from its cgroup)."""

    memory_bytes: Annotated[int | None, Field(description="Memory in use now.")]
    memory_peak_bytes: Annotated[int | None, Field(description="Most memory used so far.")]
    cpu_seconds: Annotated[float | None, Field(description="User + system CPU time so far.")]
    pids: Annotated[int | None, Field(description="Processes (tasks) now.")]
