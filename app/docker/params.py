"""Query parameters as Docker clients send them.

Booleans: the CLI sends ``1``/``0``, docker-py ``1``/``0`` or Python's
``True``/``False``; Docker reads ``""``, ``0``, ``no``, ``false``, ``none``
as false.  Filters: a JSON object of lists (``{"status": ["exited"]}``) or
the older object of sets (``{"status": {"exited": true}}``).
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated

from pydantic import BeforeValidator

from app.docker.errors import DockerError
from runtime import timeutil

FALSE = {"", "0", "no", "false", "none", "off"}
TRUE = {"1", "true", "yes", "on"}


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in FALSE:
        return False
    if text in TRUE:
        return True
    raise ValueError(f"{value!r} is not a boolean (1/0/true/false)")


DockerBool = Annotated[bool, BeforeValidator(parse_bool)]

#: Go's time.ParseDuration units, as ``--filter until=24h`` is written.
_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9}
_DURATION_UNITS.update(m=60 * 10**9, h=3600 * 10**9)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_time(name: str, value: str, now_ns: int | None = None) -> int:
    """A point in time in unix ns, as Docker's filters and ``since``/``until``
    take it: unix seconds (with a fraction), RFC 3339, or a Go duration
    (``10m``, ``1h30m``) meaning that long ago."""
    if value and _DURATION.sub("", value) == "" and not value.isdigit():
        ago = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(value))
        return (time.time_ns() if now_ns is None else now_ns) - int(ago)
    try:
        return timeutil.parse_ns(value)
    except ValueError as err:
        raise DockerError(400, f"invalid {name} {value!r}: {err}") from None


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise DockerError(400, f"invalid filters: {err}") from err
    if not isinstance(data, dict):
        raise DockerError(400, "invalid filters: expected a JSON object")
    filters: dict[str, list[str]] = {}
    for key, values in data.items():
        if isinstance(values, dict):
            values = [k for k, on in values.items() if on]
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DockerError(400, f"invalid filters: {key!r} needs a list of strings")
        filters[key] = values
    return filters


#: Docker's default grace period of stop and restart (``t`` unset or -1).


def stop_grace(t: int | None, signal: str) -> float | None:
    """The grace period of a stop or restart's ``t`` (``None``: the container's
    own ``StopTimeout``, else 10 s); its ``signal`` must be SIGTERM (or unset):
    another stop signal in the query is refused."""
    if signal.upper() not in ("", "SIGTERM", "TERM", "15"):
        raise DockerError(400, "unsupported option: stop signal other than SIGTERM")
    return None if t is None or t < 0 else float(t)
