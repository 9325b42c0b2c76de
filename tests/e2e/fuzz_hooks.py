"""Schemathesis hooks for tests/e2e/test_fuzz.py (loaded via SCHEMATHESIS_HOOKS).

The fuzzer launches real containers, which see the host's filesystem when
they have no image: every generated command runs as arguments of
``/bin/true``, so whatever it generates, nothing but ``true`` is executed.
The values still reach the service as generated (validation sees them all).
"""

from __future__ import annotations

from typing import Any

import schemathesis

COMMAND_FIELDS = ("command", "Cmd", "Entrypoint")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
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
