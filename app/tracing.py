"""Traces: FastAPI's own request spans, plus a span per launch, exported over OTLP.

    Tracing.from_environment()  on when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP/HTTP,
                                batched); off otherwise, and then no SDK is imported
    Tracing.to(exporter)        every span to ``exporter`` as it ends (tests: in memory)
    .telemetry()                what ``FastAPI(telemetry=...)`` takes: our provider, or
                                tracing off; never FastAPI's auto-configured exporters
    .around(lifespan)           the lifespan, inside the exporter's life: the span
                                processor attached at start-up, flushed and shut down
                                at the end
    .on_launch(trace)           the runtime's hook (runtime/launchtrace.py): the launch
                                span and the launcher's steps as its children

The spans of one ``POST /containers`` (docs/observability.md):

    POST /containers                  FastAPI (fastapi.telemetry), SERVER
    └── fastapi.endpoint              FastAPI's operation span, the handler
        └── container.launch          the launcher round trip (Launches._launch)
            ├── launcher.clone        op received -> clone(2) returned
            ├── launcher.join         clone returned -> joined byte sent (go byte,
            │                         cgroup join as events)
            └── child.setup           joined byte sent -> execve (EOF on the error pipe)

A launch without a clone (a start of a created container, or a create that
claimed a pooled child: runtime/launcher/pool.py) has ``launcher.release``,
op received -> joined byte sent (the claim, the go byte as an event), then
``child.setup``.

The children are timed by the launcher's clock (its monotonic stamps turned
into wall-clock time once per reply), the launch span by the API's: both are
the host's wall clock, and a child is clamped into its parent so that a clock
step between the two processes cannot break the tree.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace as trace_api
from opentelemetry.trace import StatusCode

from runtime import LaunchTimeline, LaunchTrace

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("mydocker.tracing")

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME = "mydocker"
LAUNCH_SPAN = "container.launch"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Tracing:
    """Off when ``make_processor`` is None: no provider, FastAPI's tracing
    disabled, no launch hook."""

    def __init__(self, make_processor: Callable[[], SpanProcessor] | None = None) -> None:
        self._make_processor = make_processor
        self.provider: TracerProvider | None = None
        if make_processor is not None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider

            # Resource.create also reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
            resource = Resource.create({"service.name": SERVICE_NAME})
            # shutdown_on_exit=False: the lifespan shuts it down (``exporting``).
            self.provider = TracerProvider(resource=resource, shutdown_on_exit=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing:
        """OTLP over HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the
        exporter reads it (and the other OTEL_EXPORTER_OTLP_* variables:
        headers, timeout, a traces-only endpoint) itself."""
        env = os.environ if environ is None else environ
        if not env.get(ENDPOINT_VARIABLE):
            return cls(None)

        def batched_otlp() -> SpanProcessor:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            return BatchSpanProcessor(OTLPSpanExporter())

        return cls(batched_otlp)

    @classmethod
    def to(cls, exporter: SpanExporter) -> Tracing:
        """Each span to ``exporter`` when it ends, on the ending thread (tests)."""

        def simple() -> SpanProcessor:
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            return SimpleSpanProcessor(exporter)

        return cls(simple)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def telemetry(self) -> TelemetryConfig:
        # auto_configure off in both cases: FASTAPI_OTEL_AUTO_CONFIGURE would
        # otherwise add a second OTLP exporter to our provider.
        if self.provider is None:
            return {"tracing": False, "auto_configure": False}
        return {"tracing": True, "tracer_provider": self.provider, "auto_configure": False}

    def around(self, lifespan: Lifespan) -> Lifespan:
        """``lifespan`` inside the exporter's life: the span processor is
        attached before the app's start-up, flushed and shut down (with the
        provider) after its shutdown, so the last launches are exported."""
        if self.provider is None or self._make_processor is None:
            return lifespan
        provider, make_processor = self.provider, self._make_processor

        @contextlib.asynccontextmanager
        async def traced(app: FastAPI) -> AsyncIterator[None]:
            provider.add_span_processor(make_processor())
            try:
                async with lifespan(app):
                    yield
            finally:
                # Flushes the batch: a thread, not the event loop.
                await run_in_threadpool(provider.shutdown)

        return traced

    @property
    def on_launch(self) -> Callable[[LaunchTrace], None] | None:
        """The hook for ``Runtime.open(on_launch=...)``; None when off."""
        return self._record_launch if self.provider is not None else None

    def _record_launch(self, launch: LaunchTrace) -> None:
        """Called on the launching worker thread, whose context is the
        request's (anyio copies it): the launch span's parent is current."""
        assert self.provider is not None
        tracer = self.provider.get_tracer("mydocker")
        attributes: dict[str, Any] = {
            "container.id": launch.container_id,
            "container.image.name": launch.image,
            "mydocker.launch.op": launch.op,
            "mydocker.launch.started": launch.started,
        }
        parent = tracer.start_span(
            LAUNCH_SPAN, start_time=launch.requested_ns, attributes=attributes
        )
        if launch.error is not None:
            parent.set_status(StatusCode.ERROR, launch.error)
        if launch.timeline is None:
            parent.set_attribute("mydocker.launch.timeline", False)
        else:
            context = trace_api.set_span_in_context(parent)
            clamp = _clamp(launch.requested_ns, launch.answered_ns)
            for name, start, end, events in launcher_steps(launch.timeline):
                child = tracer.start_span(
                    name, context=context, start_time=clamp(start), attributes=attributes
                )
                for event, at in events:
                    child.add_event(event, timestamp=clamp(at))
                child.end(end_time=clamp(end))
        parent.end(end_time=launch.answered_ns)


Step = tuple[str, int, int, list[tuple[str, int]]]


def launcher_steps(timeline: LaunchTimeline) -> list[Step]:
    """The child spans a timeline makes: (name, start, end, events), in
    order; a step whose ends were not both stamped is left out (a start or a
    pooled create has no clone but a release, a create that does not start
    no child set-up)."""
    steps: list[Step] = []
    t = timeline
    if t.received is not None and t.cloned is not None:
        steps.append(("launcher.clone", t.received, t.cloned, []))
    join_end = t.joined_sent if t.joined_sent is not None else t.cgroup_joined
    if t.cloned is not None and join_end is not None:
        events = [
            (name, at)
            for name, at in (("go byte sent", t.go_sent), ("cgroup joined", t.cgroup_joined))
            if at is not None
        ]
        steps.append(("launcher.join", t.cloned, join_end, events))
    if t.cloned is None and t.received is not None and t.joined_sent is not None:
        events = [("go byte sent", t.go_sent)] if t.go_sent is not None else []
        steps.append(("launcher.release", t.received, t.joined_sent, events))
    if t.joined_sent is not None and t.execd is not None:
        steps.append(("child.setup", t.joined_sent, t.execd, []))
    return steps


def _clamp(low: int, high: int) -> Callable[[int], int]:
    return lambda ns: min(max(ns, low), high)
