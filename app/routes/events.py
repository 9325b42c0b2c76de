"""``/events``: what happened to containers, execs and images, as NDJSON.

One handler: the query becomes an ``EventFilter`` (422 naming a bad
parameter), and the stream is ``app/eventstream.py``'s, which holds no
thread while it waits and ends when the client leaves.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app import eventstream
from app.deps import RuntimeDep
from app.logquery import TIME_SCHEMA, log_time
from runtime.events import EventFilter, EventType

router = APIRouter(tags=["events"])

EVENT_LINE = (
    '{"time": "2026-11-29T05:00:00.123456789Z", "time_ns": 1795928400123456789, '
    '"type": "container", "action": "die", "id": "…", "name": "web", '
    '"attributes": {"exit_code": "0", "image": "busybox", "label.app": "web"}}'
)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"example": EVENT_LINE}}}},
)
async def events(
    runtime: RuntimeDep,
    request: Request,
    since: Annotated[
        str | None,
        Query(
            description="Replay the logged events from this time: unix seconds "
            "(`1795928400.5`) or RFC 3339. Without it, only events from now on.",
            json_schema_extra=TIME_SCHEMA,
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            description="End the stream at this time (as `since`). Without it, "
            "the stream follows until the client leaves.",
            json_schema_extra=TIME_SCHEMA,
        ),
    ] = None,
    type: Annotated[list[EventType], Query(description="Only these types.")] = [],  # noqa: B006
    action: Annotated[
        list[str], Query(description="Only these actions (`start`, `die`, ...).")
    ] = [],  # noqa: B006
    container: Annotated[
        str | None, Query(description="Only this container's (id, 12+ char prefix, or name).")
    ] = None,
    label: Annotated[
        list[str], Query(description="Only containers with this label: `key` or `key=value`.")
    ] = [],  # noqa: B006
) -> StreamingResponse:
    """Events as NDJSON, one per line, oldest first (docs/observability.md)."""
    since_ns = log_time("since", since)
    filter = EventFilter(
        since_ns=time.time_ns() if since_ns is None else since_ns,
        until_ns=log_time("until", until),
        types=frozenset(type),
        actions=frozenset(action),
        container=container,
        labels=tuple(label),
    )
    wakeups: eventstream.Wakeups = request.app.state.event_wakeups
    return StreamingResponse(
        eventstream.stream(runtime.events, filter, wakeups), media_type="application/x-ndjson"
    )
