"""The exec models: ``ExecCreate`` (the body of ``POST /containers/{ref}/exec``)
and ``ExecPublic``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)

from app.schemas.fields import (
    AbsolutePath,
    Argument,
    ContainerStatus,
    Environment,
    TtySize,
    check_command,
    check_env,
)
from runtime import ExecRecord
from runtime.spec import (
    Status,
)


class ExecCreate(BaseModel):
    """A command to start inside a running container."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"command": ["hostname"]}, {"command": ["sh"], "tty": True}]
        },
    )

    command: Annotated[
        list[Argument], Field(min_length=1, description="argv, looked up in `PATH`.")
    ]
    tty: Annotated[
        StrictBool, Field(description="A pseudo-terminal of its own (as for containers).")
    ] = False
    stdin: Annotated[StrictBool, Field(description="Keep stdin open for attach.")] = False
    env: Annotated[Environment, Field(description="On top of the container's environment.")] = {}
    workdir: Annotated[
        AbsolutePath | None, Field(description="Absolute path; the container's workdir by default.")
    ] = None
    user: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31})?$",
            description="`name`, `uid`, `name:group` or `uid:gid` (names from the "
            "container's /etc/passwd and /etc/group).",
        ),
    ] = None
    tty_size: Annotated[
        TtySize | None, Field(description="Initial size of the terminal (with `tty`).")
    ] = None

    @field_validator("command")
    @classmethod
    def _no_nul(cls, command: list[str]) -> list[str]:
        return check_command(command)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, env: dict[str, str]) -> dict[str, str]:
        return check_env(env)


class ExecPublic(BaseModel):
    """A process started in a container."""

    id: str
    container_id: str
    status: ContainerStatus
    command: list[str]
    tty: bool
    stdin: bool
    user: str | None
    pid: Annotated[
        int | None, Field(description="Host pid of the command's parent, which waits for it.")
    ]
    exit_code: Annotated[
        int | None,
        Field(description="null while it runs (and when lost); 128+N when killed by signal N."),
    ]
    signal: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_record(cls, record: ExecRecord) -> ExecPublic:
        spec = record.spec
        return cls(
            id=record.id,
            container_id=record.container_id,
            status=record.status,
            command=list(spec.command),
            tty=spec.tty,
            stdin=spec.stdin,
            user=spec.user,
            pid=record.pid if record.status != Status.exited else None,
            exit_code=record.exit_code,
            signal=record.signal,
            error=record.error,
            created_at=record.created_at,  # type: ignore[arg-type]
            started_at=record.started_at,  # type: ignore[arg-type]
            finished_at=record.finished_at,  # type: ignore[arg-type]
        )
