"""What a container should be: frozen dataclasses, no validation framework.

``ContainerSpec`` is what the API hands the runtime and what the runtime
hands the launcher (as a plain dict through ``to_dict``/``from_dict``).  The
HTTP layer validates user input with pydantic; the checks here are the
runtime's own invariants, so a spec that reaches the launcher is sane even if
it did not come through HTTP.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """A container to launch.

    ``command[0]`` is looked up in ``PATH`` (of ``env``) inside the container
    when it has no slash, as execvp(3) does.
    """

    command: tuple[str, ...]
    hostname: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = "/"

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("command must not be empty")
        for arg in self.command:
            if "\0" in arg:
                raise ValueError("command must not contain NUL bytes")
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key or "\0" in value:
                raise ValueError(f"invalid environment variable {key!r}")

    def environ(self) -> dict[str, str]:
        """The environment the command sees: defaults first, then ``env``."""
        environ = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname, "HOME": "/root"}
        environ.update(self.env)
        return environ


T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a spec dataclass (tuples become lists)."""
    return typing.cast(dict[str, Any], _plain(dataclasses.asdict(obj)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """The inverse of ``to_dict`` for nested frozen dataclasses."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in data:
            kwargs[field.name] = _coerce(hints[field.name], data[field.name])
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                return _coerce(arg, value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value)
    if origin is tuple:
        item = args[0] if args else Any
        return tuple(_coerce(item, v) for v in value)
    if origin in (Mapping, dict):
        return dict(value)
    return value
