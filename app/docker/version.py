"""Docker Engine API versions: what we announce, and the ``/v1.NN`` path prefix.

The ``docker`` CLI reads ``API-Version`` from ``/_ping`` and then talks
``min(its version, ours)``; below 1.44 it falls back to old behaviour that
breaks ``run --rm``, so we announce a recent version on every response.
"""

from __future__ import annotations

import re

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
#: What ``/version`` calls the engine; a Docker-like string for clients that parse it.
ENGINE_VERSION = "27.5.0-mydocker"

#: ``/v1.47/containers/json`` -> ("1.47", "/containers/json")
PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")

HEADERS = [
    (b"api-version", API_VERSION.encode()),
    (b"ostype", b"linux"),
    (b"docker-experimental", b"false"),
    (b"server", f"Docker/{ENGINE_VERSION} (linux)".encode()),
]


def parse(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def check(version: str) -> str | None:
    """``None`` when we serve ``version``, else Docker's own refusal sentence."""
    asked = parse(version)
    if asked > parse(API_VERSION):
        return (
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if asked < parse(MIN_API_VERSION):
        return (
            f"client version {version} is too old. "
            f"Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version"
        )
    return None
