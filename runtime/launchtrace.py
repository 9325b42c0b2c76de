"""A launch's timeline as the launcher measured it, and the hook that hands it on.

    Stamps         the launcher's side: monotonic stamps taken in spawn.py,
                   turned into wall-clock nanoseconds once, for the reply
    LaunchTimeline the reply's ``timeline`` (messages.Launched): wall-clock
                   nanoseconds, each optional; ``from_wire`` is lenient
    LaunchTrace    one launch as the runtime saw it: the container, the op,
                   when it asked and when the answer came, and the timeline
    LaunchObserver what ``Runtime(on_launch=...)`` takes; app/tracing.py turns
                   each trace into spans (runtime/ imports no OpenTelemetry)

The stamps of one launch, in order (docs/observability.md):

    received      the launcher began the op (create: before the cgroup, stdio,
                  pipes; start: before the bytes)
    cloned        clone(2) returned in the launcher
    go_sent       the go byte written (the child starts building its root)
    cgroup_joined the child is in its cgroups
    joined_sent   the joined byte written (the child goes on to exec)
    execd         EOF on the error pipe: the child's execve succeeded (or its
                  report of a failed step was read to the end)

A create that does not start (Docker's create) stops at ``cgroup_joined``; a
start has ``received``, ``go_sent``, ``joined_sent``, ``execd``.  Launchers
from before this field send no timeline: ``None``, and the launch is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

#: The stamps' wire names, in the order they are taken.
STAMPS = ("received", "cloned", "go_sent", "cgroup_joined", "joined_sent", "execd")


@dataclass(frozen=True)
class LaunchTimeline:
    """Wall-clock nanoseconds (``time.time_ns()`` scale) of a launch's steps;
    ``None`` where the step did not happen in this op."""

    received: int | None = None
    cloned: int | None = None
    go_sent: int | None = None
    cgroup_joined: int | None = None
    joined_sent: int | None = None
    execd: int | None = None

    def to_wire(self) -> dict[str, int]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_wire(cls, message: Any) -> LaunchTimeline | None:
        """The reply's ``timeline``: ``None`` when absent or not an object; a
        stamp that is not a non-negative integer is dropped, unknown names
        are ignored (a newer launcher may stamp more)."""
        if not isinstance(message, Mapping):
            return None
        stamps: dict[str, int] = {}
        for name in STAMPS:
            value = message.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                stamps[name] = value
        return cls(**stamps)


class Stamps:
    """The launcher's stamps of one op, on its monotonic clock (immune to a
    wall-clock step between two of them); ``timeline()`` converts them all
    with one offset taken when the reply is built."""

    def __init__(self) -> None:
        self._ns: dict[str, int] = {}

    def stamp(self, name: str) -> None:
        self._ns[name] = time.monotonic_ns()

    def restart(self) -> None:
        """A new op on the same child (a start after a create)."""
        self._ns.clear()
        self.stamp("received")

    def timeline(self) -> LaunchTimeline:
        offset = time.time_ns() - time.monotonic_ns()
        return LaunchTimeline(**{name: ns + offset for name, ns in self._ns.items()})


@dataclass(frozen=True)
class LaunchTrace:
    """One launcher round trip of a container: ``op`` is ``create`` (which
    also starts it when ``started``) or ``start``; ``requested_ns`` and
    ``answered_ns`` are the runtime's wall clock around the request;
    ``error`` is the failed set-up step's message (the child never exec'd)."""

    container_id: str
    image: str
    op: str
    started: bool
    requested_ns: int
    answered_ns: int
    timeline: LaunchTimeline | None
    error: str | None = None


LaunchObserver = Callable[[LaunchTrace], None]
