"""Schemathesis hooks for tests/e2e/test_docker_fuzz.py (``SCHEMATHESIS_HOOKS``).

before_call          ``/events`` gets an ``until`` in the past, so the stream
                     replays and ends instead of following until the timeout;
                     half the generated ``{id}``/``{name}`` become a real
                     container (``MYDOCKER_FUZZ_CONTAINER``) or image, so
                     the handlers past the 404 are reached too
docker_error_shape   a check: every refusal (4xx, 5xx) is Docker's
                     ``{"message": "..."}``, which the clients print
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import schemathesis

from app.docker.errors import DockerError
from app.docker.params import parse_time


def _events_end(case: Any) -> None:
    """A valid or empty ``until`` (empty is unset: follow) becomes the epoch;
    an invalid one is kept, for the 400."""
    query = dict(case.query or {})
    until = query.get("until")
    if until not in (None, ""):
        try:
            parse_time("until", str(until))
        except DockerError:
            return
    query["until"] = "0"
    case.query = query


def _real_ids(case: Any) -> None:
    known = {"id": os.environ.get("MYDOCKER_FUZZ_CONTAINER"), "name": "busybox"}
    params = dict(case.path_parameters or {})
    for key, real in known.items():
        # Half of them, by the generated value: the run stays reproducible.
        if real and key in params and zlib.crc32(str(params[key]).encode()) % 2 == 0:
            params[key] = real
    case.path_parameters = params


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.path == "/events":
        _events_end(case)
    if case.path_parameters:
        _real_ids(case)


@schemathesis.check
def docker_error_shape(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        text = response.text[:200]
        raise AssertionError(f"a {response.status_code} that is not JSON: {text!r}") from None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise AssertionError(f"a {response.status_code} without Docker's message: {body!r}")
    return None
