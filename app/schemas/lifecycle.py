"""The lifecycle verbs' models (app/routes/lifecycle.py).

ContainerUpdate   the limits a running container may change: memory, cpus,
                  pids (bounded as ``runtime.spec.Limits`` declares them)
ContainerTop      ``ps`` of its processes: titles and rows
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict

from app.schemas.limits import limit_field
from runtime.lifecycle import Top
from runtime.spec import Limits


class ContainerUpdate(BaseModel):
    """New limits for a container; unset fields stay as they are."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"memory_bytes": 134217728, "pids": 64}]}
    )

    memory_bytes: Annotated[int | None, limit_field("memory_bytes")] = None
    cpus: Annotated[float | None, limit_field("cpus")] = None
    pids: Annotated[int | None, limit_field("pids")] = None

    def to_limits(self) -> Limits:
        return Limits(memory_bytes=self.memory_bytes, cpus=self.cpus, pids=self.pids)


class ContainerTop(BaseModel):
    """The container's processes as ``ps`` shows them (host pids)."""

    titles: list[str]
    processes: list[list[str]]

    @classmethod
    def from_top(cls, top: Top) -> ContainerTop:
        return cls(titles=list(top.titles), processes=[list(row) for row in top.processes])
