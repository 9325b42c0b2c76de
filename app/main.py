"""``create_app()``: the FastAPI application, its routes and its life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from app import docs, errors, eventstream, guard, ui
from app.config import Settings
from app.creates import Creates
from app.docker import DockerDispatch, create_docker_app
from app.metrics import HttpMetrics, Metrics, RouteNote
from app.metrics import router as metrics_router
from app.routes import archive, containers, events, execs, images, lifecycle, networks, volumes
from app.tracing import Tracing
from runtime import Runtime
from runtime.api import RuntimeApi
from runtime.imaging import RegistryOptions

DESCRIPTION = """
Launch Linux containers over HTTP.  Each container is a process cloned into
new mount, PID, UTS, network and IPC namespaces; the service records how it
ended and keeps its output.
"""


def create_app(
    settings: Settings, runtime: RuntimeApi | None = None, tracing: Tracing | None = None
) -> FastAPI:
    """The app; pass ``runtime`` to use one that is already started (tests),
    ``tracing`` to replace the one OTEL_EXPORTER_OTLP_ENDPOINT selects (app/tracing.py)."""
    traces = tracing or Tracing.from_environment()
    metrics = Metrics()
    app = FastAPI(
        title="mydocker",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=traces.around(_Lifespan(settings, metrics, traces, runtime)),
        telemetry=traces.telemetry(),
        docs_url=None,  # served by app.docs, without a CDN
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.state.creates = Creates()
    app.state.docker_network = settings.docker_network
    _install_routes(app)
    _install_middleware(app, settings, metrics)
    return app


def _install_routes(app: FastAPI) -> None:
    errors.install(app)
    docs.install(app)
    ui.install(app)
    app.include_router(containers.router)
    app.include_router(lifecycle.router)
    app.include_router(archive.router)
    app.include_router(execs.router)
    app.include_router(images.router)
    app.include_router(networks.router)
    app.include_router(networks.endpoints)
    app.include_router(volumes.router)
    app.include_router(events.router)
    app.include_router(metrics_router)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: answers while the service runs."""
        return {"status": "ok"}


def _install_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    # The Docker API is an app of its own (its own error shape), sharing this
    # one's state (the runtime) and dependency overrides (tests' fakes).
    docker = create_docker_app()
    docker.state = app.state
    docker.dependency_overrides = app.dependency_overrides
    docker.add_middleware(RouteNote)
    app.add_middleware(DockerDispatch, native=app, docker=docker)
    # Last added is outermost: the guard sees every request, Docker's included.
    guard.install(app, settings)
    # Outermost of all: a 401 or 413 from the guard is counted too.
    app.add_middleware(HttpMetrics, metrics=metrics)


class _Lifespan:
    """The app's life: the metrics port, and the runtime opened (or the one
    given) on start-up, closed on shutdown."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        traces: Tracing,
        runtime: RuntimeApi | None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.traces = traces
        self.runtime = runtime

    @asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        server = None
        if self.settings.metrics_port is not None:
            server, _ = self.metrics.serve_port(self.settings.metrics_port)
        try:
            if self.runtime is not None:
                app.state.runtime = self.runtime
                self._observe(app, self.runtime)
                yield
                return
            async with self._opened(app):
                yield
        finally:
            app.state.creates.close()
            if server is not None:
                server.shutdown()
                server.server_close()

    def _observe(self, app: FastAPI, found: RuntimeApi) -> None:
        # A fake runtime (API tests) has no event log: only a real one is observed.
        if isinstance(found, Runtime):
            self.metrics.attach(found)
            wakeups = eventstream.Wakeups(asyncio.get_running_loop())
            found.events.listeners.append(wakeups.on_event)
            app.state.event_wakeups = wakeups

    @asynccontextmanager
    async def _opened(self, app: FastAPI) -> AsyncIterator[Runtime]:
        settings = self.settings
        started = Runtime.open(
            settings.state_dir,
            userns_range=settings.userns_range,
            max_containers=settings.max_containers,
            default_limits=settings.default_limits,
            max_image_bytes=settings.max_upload_bytes,
            host_image_paths=settings.host_image_paths,
            meter=self.metrics.meter,
            on_launch=self.traces.on_launch,
            registry=RegistryOptions(settings.insecure_registries, settings.registry_mirrors),
            pool_size=settings.pool_size,
            pool_images=settings.pool_images,
            favordynmods=settings.cgroup_favordynmods,
        )
        # Before start: the reconcile reports the exits it finds.
        self._observe(app, started)
        await run_in_threadpool(started.start)
        app.state.runtime = started
        try:
            yield started
        finally:
            await run_in_threadpool(
                started.close,
                stop_containers=settings.stop_containers_on_exit,
                grace=settings.shutdown_timeout,
            )
            if settings.uds is not None:
                # Here, not after uvicorn.run: uvicorn re-raises SIGTERM once
                # it has shut down, so code after it never runs.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(settings.uds)
