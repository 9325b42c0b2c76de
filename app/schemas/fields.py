"""The building blocks of the API's models: patterns, annotated field types,
and the validators they share (commands, environments, paths, the terminal size).

Each pattern is also written into the OpenAPI schema (``documents``), so the
schema states what the validators check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
)
from pydantic.json_schema import GenerateJsonSchema

from runtime.security import capabilities
from runtime.signals import SIGNAL_NAMES, SIGNAL_NUMBERS
from runtime.spec import (
    Status,
    check_container_path,
)

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
# RFC 1123 labels: letters, digits, inner hyphens; dots between labels.
#: execve(2): one argument or "KEY=value" string may be at most MAX_ARG_STRLEN
#: (32 pages, 128 KiB) long; all of them together are bounded by a quarter of
#: the stack limit.  We cap the total lower, at 1 MiB, so no request can make
#: the service or the launcher hold more than that per container.
MAX_ARG_BYTES = 128 * 1024
MAX_ARGV_ENV_BYTES = 1024 * 1024
HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def documents(**keywords: Any) -> Any:
    """JSON Schema keywords that state what a validator here checks, so that
    the OpenAPI schema promises exactly what is accepted; the validator keeps
    the check and its message (pydantic's own pattern errors say less)."""
    return Field(json_schema_extra=keywords)


def fresh(factory: Callable[[], Any]) -> Any:
    """A default made anew for each body (``default_factory``) that the schema
    still states as its ``default``, as a plain ``= []`` would: pydantic
    deep-copies an unhashable default on every validation, which was most of
    the cost of validating a small ``ContainerCreate`` (docs/performance-log.md,
    "The lean API path and the Docker path")."""
    shown = GenerateJsonSchema().encode_default(factory())
    return Field(default_factory=factory, json_schema_extra={"default": shown})


#: What the validators below accept, as JSON Schema patterns.
NO_NUL = r"^[^\x00]*$"
ABSOLUTE_PATH = r"^/[^\x00]*$"
ENV_NAME = r"^[^=\x00]+$"
#: runtime.spec.check_container_path: absolute, not `/` itself, no `..`.
CONTAINER_PATH = r"^(?!/*$)(?!(.*/)?\.\.(/|$))/[^\x00]*$"
LABEL_KEY = r"^[^\x00]+$"
#: runtime.images.reference: [registry[:port]/][namespace/]name[:tag][@sha256:…], or an id.
IMAGE_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/\[\]-]*(@sha256:[0-9a-f]{64})?$"
#: Capabilities by name, as sent (`normalize` also takes other cases and spaces).
CAPABILITY_NAMES = [
    "ALL",
    *capabilities.CAPABILITIES,
    *(f"CAP_{c}" for c in capabilities.CAPABILITIES),
]

Argument = Annotated[str, documents(pattern=NO_NUL)]
# Keys are described by patternProperties; additionalProperties closes the
# object to the others, as the validators do.
Environment = Annotated[
    dict[Annotated[str, documents(pattern=ENV_NAME)], Annotated[str, documents(pattern=NO_NUL)]],
    documents(additionalProperties=False),
]
Labels = Annotated[
    dict[Annotated[str, documents(pattern=LABEL_KEY)], Annotated[str, documents(pattern=NO_NUL)]],
    documents(additionalProperties=False),
]
Capability = Annotated[str, documents(enum=CAPABILITY_NAMES)]
#: A signal by name or number, as runtime.signals.parse_signal takes it.
Signal = Annotated[
    Annotated[str, documents(enum=SIGNAL_NAMES)]
    | Annotated[StrictInt, documents(enum=SIGNAL_NUMBERS)],
    Field(description="Signal name (`SIGTERM`, `TERM`) or number."),
]


#: The runtime's statuses (runtime.spec.Status), as the API shows them.
ContainerStatus = Status


class TtySize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Annotated[int, Field(ge=1, le=65535)]
    cols: Annotated[int, Field(ge=1, le=65535)]

    def pair(self) -> tuple[int, int]:
        return (self.rows, self.cols)


def check_command(command: list[str]) -> list[str]:
    """Each argument as execve(2) takes it: no NUL, and under the kernel's per-string
    bound (MAX_ARG_STRLEN), which would otherwise fail the exec with E2BIG."""
    for index, arg in enumerate(command):
        if "\0" in arg:
            raise ValueError(f"argument {index} contains a NUL byte")
        if len(arg.encode()) >= MAX_ARG_BYTES:
            raise ValueError(f"argument {index} is longer than {MAX_ARG_BYTES} bytes")
    return command


def check_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"invalid variable name {key!r}: empty, or has '=' or NUL")
        if "\0" in value:
            raise ValueError(f"the value of {key!r} contains a NUL byte")
    return env


def absolute_path(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise ValueError("must be an absolute path without NUL bytes")
    return path


def container_path(path: str) -> str:
    try:
        check_container_path(path, "the path")
    except ValueError as err:
        raise ValueError(str(err)) from None
    return path


#: A host path, or a working directory: absolute, no NUL.
AbsolutePath = Annotated[str, AfterValidator(absolute_path), documents(pattern=ABSOLUTE_PATH)]
#: Where a mount goes in the container (runtime.spec.check_container_path).
ContainerPath = Annotated[
    str,
    AfterValidator(container_path),
    Field(
        description="Absolute path in the container, without `..`.",
        json_schema_extra={"pattern": CONTAINER_PATH},
    ),
]


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Label keys are not empty; neither keys nor values hold NUL bytes."""
    for key, value in labels.items():
        if not key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid label {key!r}: empty, or has a NUL byte")
    return labels
