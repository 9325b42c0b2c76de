"""Dockerfile instructions as changes to an image config (``docker commit/import --change``).

    apply_changes(config, ["CMD [\\"bash\\"]", "EXPOSE 8000", ...]) -> ImageConfig

The instructions Docker's ``--change`` accepts (moby's
``dockerfile.BuildFromConfig``; Dockerfile reference) and what each does here:

    CMD / ENTRYPOINT   the JSON form ``["a", "b"]`` as it is; the shell form
                       ``a b`` as ``/bin/sh -c "a b"``; ENTRYPOINT drops the Cmd
    ENV                ``K=V [K2=V2 …]`` (quotes as a shell has them) or ``K V``;
                       a key set again is replaced in place
    LABEL              ``K=V [K2=V2 …]``
    USER, STOPSIGNAL   the one argument
    WORKDIR            an absolute path, or one relative to the previous WorkingDir
    EXPOSE             ``8000 8001/udp``: ``8000/tcp``, ``8001/udp``
    VOLUME             ``["/a", "/b"]`` or ``/a /b``

Anything else (``RUN``, ``COPY``, ``ONBUILD``, ``HEALTHCHECK``, …) is an
``InvalidArgument`` naming ``changes`` and the line, never dropped.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import shlex
from collections.abc import Callable, Sequence

from runtime.errors import InvalidArgument
from runtime.images.oci import ImageConfig

FIELD = "changes"


def apply_changes(config: ImageConfig, changes: Sequence[str]) -> ImageConfig:
    """``config`` with each instruction of ``changes`` applied, in order."""
    for line in changes:
        text = line.strip()
        if not text:
            continue
        keyword, _, rest = text.partition(" ")
        handler = _HANDLERS.get(keyword.upper())
        if handler is None:
            raise InvalidArgument(
                FIELD,
                f"{text!r}: {keyword.upper()} is not a valid change command "
                f"(valid: {', '.join(sorted(_HANDLERS))})",
            )
        try:
            config = handler(config, rest.strip())
        except ValueError as err:
            raise InvalidArgument(FIELD, f"{text!r}: {err}") from None
    return config


def _argv(rest: str) -> tuple[str, ...]:
    """The JSON (exec) form as it is, the shell form under ``/bin/sh -c``."""
    if rest.startswith("["):
        try:
            doc = json.loads(rest)
        except ValueError:
            doc = None
        if isinstance(doc, list) and all(isinstance(item, str) for item in doc):
            return tuple(doc)
    if not rest:
        raise ValueError("needs an argument")
    return ("/bin/sh", "-c", rest)


def _pairs(rest: str, allow_two_words: bool) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` (or the old ``K V`` form), as a shell splits and unquotes them."""
    words = shlex.split(rest)
    if not words:
        raise ValueError("needs KEY=VALUE")
    if "=" not in words[0]:
        if not allow_two_words or len(words) < 2:
            raise ValueError(f"{words[0]!r} is not KEY=VALUE")
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"{word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _cmd(config: ImageConfig, rest: str) -> ImageConfig:
    return dataclasses.replace(config, cmd=_argv(rest))


def _entrypoint(config: ImageConfig, rest: str) -> ImageConfig:
    # Dockerfile reference: ENTRYPOINT resets a Cmd inherited from the base image.
    return dataclasses.replace(config, entrypoint=_argv(rest), cmd=None)


def _env(config: ImageConfig, rest: str) -> ImageConfig:
    env = list(config.env)
    for key, value in _pairs(rest, allow_two_words=True):
        entry = f"{key}={value}"
        index = next((i for i, e in enumerate(env) if e.split("=", 1)[0] == key), None)
        if index is None:
            env.append(entry)
        else:
            env[index] = entry
    return dataclasses.replace(config, env=tuple(env))


def _label(config: ImageConfig, rest: str) -> ImageConfig:
    return dataclasses.replace(
        config, labels={**config.labels, **dict(_pairs(rest, allow_two_words=True))}
    )


def _one(rest: str) -> str:
    if not rest:
        raise ValueError("needs an argument")
    return rest


def _user(config: ImageConfig, rest: str) -> ImageConfig:
    return dataclasses.replace(config, user=_one(rest))


def _stopsignal(config: ImageConfig, rest: str) -> ImageConfig:
    return dataclasses.replace(config, stop_signal=_one(rest))


def _workdir(config: ImageConfig, rest: str) -> ImageConfig:
    path = posixpath.join(config.working_dir or "/", _one(rest))
    return dataclasses.replace(config, working_dir=posixpath.normpath(path))


def _expose(config: ImageConfig, rest: str) -> ImageConfig:
    ports = set(config.exposed_ports)
    for word in _one(rest).split():
        port, _, proto = word.partition("/")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{word!r} is not a port (1-65535, then /tcp, /udp or /sctp)")
        if proto not in ("", "tcp", "udp", "sctp"):
            raise ValueError(f"{word!r}: the protocol is tcp, udp or sctp")
        ports.add(f"{int(port)}/{proto or 'tcp'}")
    return dataclasses.replace(config, exposed_ports=tuple(sorted(ports)))


def _volume(config: ImageConfig, rest: str) -> ImageConfig:
    paths = _argv(rest) if rest.startswith("[") else tuple(_one(rest).split())
    if paths[:2] == ("/bin/sh", "-c"):
        raise ValueError("is neither a JSON list of paths nor paths")
    return dataclasses.replace(config, volumes=tuple(sorted({*config.volumes, *paths})))


_HANDLERS: dict[str, Callable[[ImageConfig, str], ImageConfig]] = {
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "ENV": _env,
    "EXPOSE": _expose,
    "LABEL": _label,
    "STOPSIGNAL": _stopsignal,
    "USER": _user,
    "VOLUME": _volume,
    "WORKDIR": _workdir,
}
