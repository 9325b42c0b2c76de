"""Prometheus metrics: what is counted, who feeds it, and ``GET /metrics``.

    Metrics         one CollectorRegistry per app (tests build several apps)
      .attach(rt)   an EventLog listener (containers started, exits by
                    outcome, events published) and the scrape-time gauges
      .meter        the runtime's ``Meter`` (runtime/meters.py): launch
                    seconds, launch errors by step, record write seconds
    HttpMetrics     a pure ASGI middleware: requests and their seconds by
                    method, route template and status (streams included)
    RouteNote       on the Docker app: the route of a request it ran under
                    a copy of the scope (its /v1.xx prefix stripped)
    router          ``GET /metrics``, behind the token like every route
    serve_port      ``--metrics-port``: /metrics alone on a loopback port,
                    without the token

The runtime measures, the app counts: runtime/ never imports
prometheus_client.  Labels are bounded: an image name, an outcome, a known
step, a route template, a method, a status; never a container's id or name
(docs/observability.md).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.errors import METHODS
from app.guard import ASGIApp, Message, Receive, Scope, Send
from runtime import Runtime
from runtime.events import Event
from runtime.meters import Meter, Outcome, exit_outcome, setup_step

# The *_created series (a timestamp per label set) double the output for
# nothing a scraper of counters needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: POST received → the launcher's reply that the child exec'd; 1-50 ms is
#: where launches are (docs/performance.md), so the buckets are fine there.
LAUNCH_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1)
WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)
#: The route label of a request no route took (404s): never the raw path.
UNMATCHED = "unmatched"

#: When the request being served arrived (``time.monotonic_ns()``), set by
#: ``HttpMetrics``; worker threads see it, as FastAPI copies the context.
request_received_ns: contextvars.ContextVar[int] = contextvars.ContextVar("request_received_ns")


class _RuntimeGauges(Collector):
    """Gauges read from the runtime at scrape time: no bookkeeping to drift."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        runtime = self.runtime
        if runtime is None:
            return
        yield GaugeMetricFamily(
            "mydocker_containers_running",
            "Containers running, by the records.",
            value=runtime.running_count(),
        )
        yield GaugeMetricFamily(
            "mydocker_disk_reserve_released",
            "1 while the space held back for recording exits is given up "
            "(the state dir filled; launches are refused), else 0.",
            value=1 if runtime.reserve_released() else 0,
        )
        yield GaugeMetricFamily(
            "mydocker_exit_waiters",
            "Waiters for a container's exit: waits and creates with wait=true "
            "in progress (one whose client left is dropped).",
            value=runtime.waiter_count(),
        )
        lag = runtime.launcher_lag()
        if lag is not None:
            yield GaugeMetricFamily(
                "mydocker_launcher_loop_lag_seconds",
                "Seconds the launcher's loop took to answer a no-op request at "
                "scrape time (a loop busy cloning or reaping answers late).",
                value=lag,
            )

        yield from _pool_metrics(runtime)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


def _pool_metrics(runtime: Runtime) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The launcher's warm pool (docs/performance.md), read at scrape time."""
    pool = runtime.pool_state()
    if pool is None:
        return
    children = GaugeMetricFamily(
        "mydocker_pool_children",
        "Children the launcher holds cloned ahead of demand, by state.",
        labels=["state"],
    )
    children.add_metric(["ready"], pool.ready)
    children.add_metric(["filling"], pool.filling)
    yield children
    claims = CounterMetricFamily(
        "mydocker_pool_claims",
        "Launches that found a ready pooled child (hit) or took the cold path (miss).",
        labels=["outcome"],
    )
    claims.add_metric(["hit"], pool.hits)
    claims.add_metric(["miss"], pool.misses)
    yield claims
    if pool.rss_bytes:
        yield GaugeMetricFamily(
            "mydocker_pool_child_rss_bytes",
            "Mean resident memory of a ready pooled child (VmRSS: pages still "
            "shared copy-on-write with the launcher count in full).",
            value=sum(pool.rss_bytes) / len(pool.rss_bytes),
        )
    if pool.fds:
        yield GaugeMetricFamily(
            "mydocker_pool_child_fds",
            "Open fds of a ready pooled child (the most of any).",
            value=max(pool.fds),
        )


class _Meter(Meter):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def launch_replied(self, replied_ns: int) -> None:
        received = request_received_ns.get(None)
        if received is not None:  # a launch not asked over HTTP has no start
            self._metrics.launch_seconds.observe((replied_ns - received) / 1e9)

    def launch_failed(self, step: str) -> None:
        self._metrics.launch_errors.labels(setup_step(step)).inc()

    def record_written(self, seconds: float) -> None:
        self._metrics.record_write_seconds.observe(seconds)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.started = Counter(
            "mydocker_containers_started", "Containers started, by image.", ["image"], registry=r
        )
        self.exits = Counter(
            "mydocker_container_exits",
            "Containers ended, by outcome: exit_0, exit_nonzero, signal, oom, timeout, lost.",
            ["outcome"],
            registry=r,
        )
        for outcome in Outcome:
            self.exits.labels(outcome.value)
        self.launch_seconds = Histogram(
            "mydocker_launch_seconds",
            "POST /containers received → the launcher's reply that the child exec'd.",
            buckets=LAUNCH_BUCKETS,
            registry=r,
        )
        self.launch_errors = Counter(
            "mydocker_launch_errors",
            "Launches that failed, by the setup step that failed (or other).",
            ["step"],
            registry=r,
        )
        self.record_write_seconds = Histogram(
            "mydocker_records_write_seconds",
            "RecordStore writes (one transaction each, lock wait included).",
            buckets=WRITE_BUCKETS,
            registry=r,
        )
        self.events_published = Counter(
            "mydocker_events_published", "Events published, by type.", ["type"], registry=r
        )
        self.http_requests = Counter(
            "mydocker_http_requests",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "mydocker_http_request_seconds",
            "HTTP requests from received to the last byte sent (streams: until they end).",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._gauges = _RuntimeGauges()
        r.register(self._gauges)
        self.meter: Meter = _Meter(self)

    def attach(self, runtime: Runtime) -> None:
        """Count what ``runtime`` reports: its events and its gauges."""
        self._gauges.runtime = runtime
        runtime.events.listeners.append(self.on_event)

    def on_event(self, event: Event) -> None:
        """The one place containers started and exits are counted."""
        self.events_published.labels(event.type.value).inc()
        if event.type.value != "container":
            return
        if event.action == "start":
            self.started.labels(event.attributes.get("image", "")).inc()
        elif event.action == "die":
            self.exits.labels(exit_outcome(event.attributes).value).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve_port(self, port: int) -> tuple[Any, threading.Thread]:
        """``--metrics-port``: a thread serving only the metrics on 127.0.0.1,
        without the token (what a local Prometheus or node agent scrapes)."""
        return start_http_server(port, addr="127.0.0.1", registry=self.registry)


router = APIRouter(tags=["service"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format (docs/observability.md)."""
    found: Metrics = request.app.state.metrics
    return Response(found.exposition(), media_type=CONTENT_TYPE_LATEST)


#: Where ``RouteNote`` leaves the route of a request that ran under a copy
#: of the scope (the Docker dispatcher's ``/v1.xx`` prefix, app/docker).
NOTE = "mydocker.route"


def route_template(scope: Scope) -> str:
    """The template of the route that took the request (``/containers/{ref}``),
    never its raw path (Starlette leaves the route in ``scope["route"]``)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    noted = (scope.get(NOTE) or {}).get("path")
    if isinstance(noted, str):
        return f"/v{{version}}{noted}"
    return UNMATCHED


class RouteNote:
    """On the Docker app: hands the route it matched back through ``NOTE``,
    a dict that the dispatcher's copy of the scope shares with the original."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            note = scope.get(NOTE)
            path = getattr(scope.get("route"), "path", None)
            if note is not None and isinstance(path, str):
                note["path"] = path


class HttpMetrics:
    """Pure ASGI (a ``BaseHTTPMiddleware`` would buffer streams): counts each
    request once it has ended, with the status it was answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic_ns()
        request_received_ns.set(started)
        scope[NOTE] = {}
        status = 500  # an app that raised before answering

        async def counted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            labels = (method, route_template(scope), str(status))
            self.metrics.http_requests.labels(*labels).inc()
            seconds = (time.monotonic_ns() - started) / 1e9
            self.metrics.http_seconds.labels(*labels).observe(seconds)
