"""What happened to containers, execs, images: an event log, on disk and live.

    Event        one happening: when, what kind of object, what was done, to
                 which (id, name), and string attributes (exit code, image, ...)
    EventFilter  since/until, types, actions, a container (id or name), labels
    EventLog     publish() appends to a bounded NDJSON log under the state dir
                 and wakes followers; read() replays the log; follow() replays
                 it and then goes on with what is published, until told to stop

The log is two segments, ``events.0.ndjson`` (older) and ``events.1.ndjson``
(newer): when the newer passes half of ``max_bytes`` it becomes the older and
a new one is started, so the log never holds more than ``max_bytes`` and
``since`` reaches back across service restarts as far as it holds.  Lines
are written with one write(2) each on an O_APPEND fd, without fsync: an
event is a report, not a record (the records are runtime/records.py's), and
costs a few µs on the launch path.

A follower first replays the segments up to where they ended when it
subscribed (read through fds opened then, so a rotation does not move them),
then takes later events from an in-memory ring by sequence number: nothing is
missed or seen twice.  A follower that falls more than ``RING`` events behind
is ended (``Lagged``) rather than let the ring grow; it may resume with
``since``.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mydocker.events")

#: The log's size on disk, both segments together.
DEFAULT_MAX_BYTES = 8 << 20
#: Events kept in memory for followers.
RING = 4096
SEGMENTS = ("events.0.ndjson", "events.1.ndjson")


class EventType(enum.StrEnum):
    CONTAINER = "container"
    EXEC = "exec"
    IMAGE = "image"
    NETWORK = "network"
    VOLUME = "volume"


@dataclass(frozen=True)
class Event:
    time_ns: int
    type: EventType
    action: str
    id: str
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "time_ns": self.time_ns,
            "type": str(self.type),
            "action": self.action,
            "id": self.id,
            "name": self.name,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            time_ns=int(data["time_ns"]),
            type=EventType(data["type"]),
            action=str(data["action"]),
            id=str(data["id"]),
            name=str(data.get("name", "")),
            attributes={str(k): str(v) for k, v in dict(data.get("attributes", {})).items()},
        )


def now_event(type: EventType, action: str, id: str, name: str = "", **attributes: object) -> Event:
    """An event dated now; ``None`` attributes are left out, others become strings."""
    return Event(
        time.time_ns(),
        type,
        action,
        id,
        name,
        {k: _text(v) for k, v in attributes.items() if v is not None},
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants; every given condition must hold."""

    since_ns: int | None = None
    until_ns: int | None = None
    types: frozenset[EventType] = frozenset()
    actions: frozenset[str] = frozenset()
    #: A container's id, id prefix of 12+ characters, or name.
    container: str | None = None
    #: ``key`` (present) or ``key=value``, matched against ``label.<key>`` attributes.
    labels: tuple[str, ...] = ()

    def matches(self, event: Event) -> bool:
        if self.since_ns is not None and event.time_ns < self.since_ns:
            return False
        if self.until_ns is not None and event.time_ns > self.until_ns:
            return False
        if self.types and event.type not in self.types:
            return False
        if self.actions and event.action not in self.actions:
            return False
        if self.container is not None and not self._is_container(event):
            return False
        return all(self._has_label(event, label) for label in self.labels)

    def _is_container(self, event: Event) -> bool:
        assert self.container is not None
        ids = [event.id] if event.type is EventType.CONTAINER else []
        if "container" in event.attributes:  # an exec's container
            ids.append(event.attributes["container"])
        names = [event.name] if event.type is EventType.CONTAINER else []
        if "container_name" in event.attributes:
            names.append(event.attributes["container_name"])
        ref = self.container
        by_id = len(ref) >= 12 and any(i.startswith(ref) for i in ids)
        return by_id or ref in names

    @staticmethod
    def _has_label(event: Event, label: str) -> bool:
        key, sep, value = label.partition("=")
        found = event.attributes.get(f"label.{key}")
        return found is not None and (not sep or found == value)


class Lagged(Exception):
    """A follower fell further behind than the ring holds."""


class EventLog:
    """Publish events; read and follow them.  Thread-safe."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._cond = threading.Condition()
        self._ring: deque[tuple[int, Event]] = deque(maxlen=RING)
        self._seq = 0
        self._closed = False
        self._fd = self._open_newer()
        self._size = os.fstat(self._fd).st_size
        #: Called with each event after it is written (metrics); must not block.
        self.listeners: list[Callable[[Event], None]] = []

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, SEGMENTS[index])

    def _open_newer(self) -> int:
        return os.open(self._path(1), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def publish(self, event: Event) -> None:
        """Write ``event`` to the log and hand it to the followers.

        A full disk or a closed log loses the event from the disk, never the
        caller's operation: events report, they do not decide."""
        line = (json.dumps(event.to_json(), separators=(",", ":")) + "\n").encode()
        with self._cond:
            if not self._closed:
                try:
                    self._append(line)
                except OSError as err:
                    log.warning("event not written to the log: %s", err)
            self._seq += 1
            self._ring.append((self._seq, event))
            self._cond.notify_all()
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    def _append(self, line: bytes) -> None:
        if self._size + len(line) > self.max_bytes // 2 and self._size > 0:
            os.replace(self._path(1), self._path(0))
            os.close(self._fd)
            self._fd = self._open_newer()
            self._size = 0
        os.write(self._fd, line)
        self._size += len(line)

    def read(self, filter: EventFilter = EventFilter()) -> Iterator[Event]:
        """The logged events that match ``filter``, oldest first."""
        with self._cond:
            fds, _ = self._snapshot()
        yield from self._replay(fds, filter)

    def follow(
        self,
        filter: EventFilter = EventFilter(),
        stop: Callable[[], bool] = lambda: False,
        poll: float = 0.5,
    ) -> Iterator[Event | None]:
        """The logged events that match, then each new one as it is published.

        Yields ``None`` at least every ``poll`` seconds while nothing comes,
        so the caller can notice a client that left; ends when ``stop()`` is
        true, when the filter's ``until`` has passed, or when the log closes;
        raises ``Lagged`` for a follower that fell ``RING`` events behind."""
        with self._cond:
            fds, seq = self._snapshot()
        yield from self._replay(fds, filter)
        while not stop():
            if filter.until_ns is not None and time.time_ns() > filter.until_ns:
                return
            with self._cond:
                if self._seq == seq and not self._closed:
                    self._cond.wait(poll)
                if self._closed:
                    return
                if self._seq - seq > len(self._ring):
                    raise Lagged(f"more than {RING} events behind")
                fresh = [event for number, event in self._ring if number > seq]
                seq = self._seq
            if not fresh:
                yield None
            for event in fresh:
                if filter.matches(event):
                    yield event

    def _snapshot(self) -> tuple[list[tuple[int, int]], int]:
        """Fds of the segments with their lengths now, and the sequence number."""
        fds: list[tuple[int, int]] = []
        for index in (0, 1):
            try:
                fd = os.open(self._path(index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            fds.append((fd, os.fstat(fd).st_size))
        return fds, self._seq

    @staticmethod
    def _replay(fds: list[tuple[int, int]], filter: EventFilter) -> Iterator[Event]:
        try:
            for fd, length in fds:
                data = os.pread(fd, length, 0) if length else b""
                for line in data.splitlines():
                    try:
                        event = Event.from_json(json.loads(line))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by a crash mid-write
                    if filter.matches(event):
                        yield event
        finally:
            for fd, _ in fds:
                os.close(fd)

    def close(self) -> None:
        with self._cond:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
            self._cond.notify_all()
