"""``GET /events``: the one event log (runtime/events.py) in Docker's shape.

    docker_event   an Event as Docker writes it: ``Type``, ``Action``,
                   ``Actor{ID, Attributes}``, ``scope``, ``time``, ``timeNano``
                   (and the older ``status``, ``id``, ``from``)
    event_filter   ``since``, ``until``, ``filters`` -> the EventFilter, plus a
                   predicate for what it does not say (several containers, images)

The native ``GET /events`` streams the same log (app/routes/events.py), so
what one API shows, the other does, and ``since`` reaches back across
restarts as far as the log holds.  Docker has no exec type: an exec's events
are the container's (``exec_create``, ``exec_start``, ``exec_die``) with
``execID`` among the attributes, as Docker sends them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app import eventstream
from app.deps import RuntimeDep
from app.docker import images
from app.docker.errors import DockerError
from app.docker.params import parse_filters, parse_time
from runtime.events import Event, EventFilter, EventType

router = APIRouter(tags=["docker events"])

#: Docker's event types -> ours; the others (daemon, plugin, ...) are valid
#: filters that nothing here publishes.
TYPES: dict[str, tuple[EventType, ...]] = {
    "container": (EventType.CONTAINER, EventType.EXEC),
    "image": (EventType.IMAGE,),
    "network": (EventType.NETWORK,),
    "volume": (EventType.VOLUME,),
    "daemon": (),
    "plugin": (),
    "service": (),
    "node": (),
    "secret": (),
    "config": (),
}
FILTERS = ("type", "event", "container", "image", "label")
#: Our attribute names -> Docker's.
ATTRIBUTES = {"exit_code": "exitCode", "container_name": "name"}


def _attributes(event: Event) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key, value in event.attributes.items():
        if key == "health_status":
            continue  # in the action, as Docker writes it
        if key.startswith("label."):
            attributes[key.removeprefix("label.")] = value
        elif key != "container" or event.type is EventType.NETWORK:
            # An exec's container is its actor; a network event's is the one
            # that joined or left, an attribute as Docker sends it.
            attributes[ATTRIBUTES.get(key, key)] = value
    if event.name and event.type is not EventType.EXEC:
        attributes["name"] = event.name
    if event.type is EventType.EXEC:
        attributes["execID"] = event.id
    return attributes


def _actor_id(event: Event) -> str:
    if event.type is EventType.EXEC:
        return event.attributes.get("container", "")
    return event.id


def docker_event(event: Event) -> dict[str, Any]:
    kind = "container" if event.type is EventType.EXEC else str(event.type)
    actor = _actor_id(event)
    action = event.action
    if "health_status" in event.attributes:
        action = f"{action}: {event.attributes['health_status']}"
    result: dict[str, Any] = {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": actor, "Attributes": _attributes(event)},
        "scope": "local",
        "time": event.time_ns // 10**9,
        "timeNano": event.time_ns,
    }
    if kind == "container":
        # The older fields, which docker-py's examples still read.
        result.update(status=action, id=actor, **{"from": event.attributes.get("image", "")})
    return result


def _line(event: Event) -> bytes:
    return (json.dumps(docker_event(event), separators=(",", ":")) + "\n").encode()


def _time(name: str, value: str) -> int | None:
    """Unix seconds (with a fraction), RFC 3339 or a duration ago; empty is unset."""
    return parse_time(name, value) if value else None


def _image_of(event: Event) -> str:
    return event.name if event.type is EventType.IMAGE else event.attributes.get("image", "")


def event_filter(
    since: str, until: str, filters: str | None
) -> tuple[EventFilter, eventstream.Keep]:
    wanted = parse_filters(filters)
    for key in wanted:
        if key not in FILTERS:
            raise DockerError(400, f"invalid filter {key!r}: one of {', '.join(FILTERS)}")
    types: set[EventType] = set()
    for kind in wanted.get("type", []):
        if kind not in TYPES:
            raise DockerError(400, f"invalid filter 'type={kind}'")
        types.update(TYPES[kind])
    since_ns = _time("since", since)
    base = EventFilter(
        since_ns=time.time_ns() if since_ns is None else since_ns,
        until_ns=_time("until", until),
        types=frozenset(types),
        # "health_status: healthy" is the action health_status with its value.
        actions=frozenset(a.split(":")[0].strip() for a in wanted.get("event", [])),
        labels=tuple(wanted.get("label", [])),
    )
    containers = [EventFilter(container=ref) for ref in wanted.get("container", [])]
    wanted_images = {images.normalize(i) for i in wanted.get("image", [])}

    # A type filter naming only what is never published matches nothing.
    nothing = bool(wanted.get("type")) and not types

    def keep(event: Event) -> bool:
        if nothing:
            return False
        if containers and not any(f.matches(event) for f in containers):
            return False
        return not wanted_images or images.normalize(_image_of(event)) in wanted_images

    return base, keep


@router.get("/events")
async def events(
    runtime: RuntimeDep, request: Request, since: str = "", until: str = "", filters: str = ""
) -> StreamingResponse:
    """Replayed from ``since`` (default: now), then followed until ``until``
    or until the client leaves."""
    base, keep = event_filter(since, until, filters or None)
    wakeups: eventstream.Wakeups = request.app.state.event_wakeups
    return StreamingResponse(
        eventstream.stream(runtime.events, base, wakeups, _line, keep),
        media_type="application/json",
    )
