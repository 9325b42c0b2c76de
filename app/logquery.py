"""The query of the two logs routes (``/containers/{ref}/logs`` and
``/execs/{ref}/logs``): one FastAPI dependency, so both take the same options
with the same documentation and checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query

from runtime import InvalidArgument, timeutil

TIMESTAMPS_DOC = (
    "Start each line with its time and a space (RFC 3339 in UTC with nine fraction digits, "
    "as `docker logs -t`): when the service saw the line written, a few ms after the write. "
    "Lines then come one by one, stdout and stderr merged by time."
)
SINCE_DOC = (
    "Only lines written at or after this time: unix seconds with an optional fraction "
    "(`1795928400.5`) or RFC 3339 (`2026-11-29T05:00:00Z`)."
)
UNTIL_DOC = "Only lines written at or before this time (as `since`); `follow` ends then."
_TIME = {"pattern": timeutil.TIME_PATTERN}
#: The same times on /events (app/routes/events.py), in the OpenAPI document.
TIME_SCHEMA = _TIME


class LogStream(StrEnum):
    stdout = "stdout"
    stderr = "stderr"


def log_time(field: str, value: str | None) -> int | None:
    """A ``since``/``until`` query value in unix ns (422 naming the field)."""
    if value is None:
        return None
    try:
        return timeutil.parse_ns(value)
    except ValueError as err:
        raise InvalidArgument(field, str(err)) from None


class LogQuery:
    """``?stream=&tail=&follow=&timestamps=&since=&until=``, checked; what
    ``Runtime.logs`` and ``Runtime.exec_logs`` take as ``options()``."""

    def __init__(
        self,
        stream: Annotated[
            LogStream | None, Query(description="Only this stream; both (stdout first) if absent.")
        ] = None,
        tail: Annotated[int | None, Query(ge=0, description="Only the last N lines.")] = None,
        follow: Annotated[bool, Query(description="Keep streaming until it exits.")] = False,
        timestamps: Annotated[bool, Query(description=TIMESTAMPS_DOC)] = False,
        since: Annotated[str | None, Query(description=SINCE_DOC, json_schema_extra=_TIME)] = None,
        until: Annotated[str | None, Query(description=UNTIL_DOC, json_schema_extra=_TIME)] = None,
    ) -> None:
        self.stream = stream.value if stream else None
        self.tail = tail
        self.follow = follow
        self.timestamps = timestamps
        self.since = log_time("since", since)
        self.until = log_time("until", until)

    def options(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "tail": self.tail,
            "follow": self.follow,
            "timestamps": self.timestamps,
            "since": self.since,
            "until": self.until,
        }
