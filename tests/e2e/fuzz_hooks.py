"""Schemathesis hooks for tests/e2e/test_fuzz.py (loaded via SCHEMATHESIS_HOOKS).

The fuzzer launches real containers, which see the host's filesystem when
they have no image: every generated command runs as arguments of
``/bin/true``, so whatever it generates, nothing but ``true`` is executed.
The values still reach the service as generated (validation sees them all),
but for ``until`` on ``/events``, which would hold each request open.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from runtime import timeutil

COMMAND_FIELDS = ("command", "Cmd", "Entrypoint")


def _events_end(case: Any) -> None:
    """``GET /events`` follows until ``until``, or until the client leaves,
    which the fuzzer does only after its request timeout: a valid ``until``
    becomes the epoch (the stream replays nothing and ends); an invalid one
    is kept, for the 422."""
    query = dict(case.query or {})
    until = query.get("until")
    try:
        timeutil.parse_ns(str(until))
    except ValueError:
        if until is not None:
            return
    query["until"] = "0"
    case.query = query


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.path == "/events":
        _events_end(case)
    body = case.body
    if not isinstance(body, dict):
        return
    for field in COMMAND_FIELDS:
        value = body.get(field)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            body[field] = ["/bin/true", *value]
        elif isinstance(value, str):
            body[field] = ["/bin/true", value]


# Image uploads (POST /images) are tar or gzip bytes: send the generated
# bytes as they are, like application/octet-stream.
for _media_type in ("application/x-tar", "application/gzip"):
    schemathesis.serializer.alias(_media_type, "application/octet-stream")
