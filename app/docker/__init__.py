"""A Docker Engine API subset beside the native API, over the same ``Runtime``.

    create_docker_app()   the Docker API as its own FastAPI app: Docker's error
                          shape ({"message"}), headers and routes
    DockerDispatch        ASGI middleware of the main app choosing who answers:
                          /v1.NN/...  -> the Docker app, prefix stripped
                          /...        -> the native app if one of its routes
                                         matches, else the Docker app if one
                                         of its routes does (/_ping, /version)
    system, containers, lifecycle, archive, attach, execs, stats, images,
    networking, volumes, swarm, events   the routes
    models (create body), views (inspect/list), streams (framing), params

Unprefixed paths that both APIs have (``/containers/{id}/wait``, ...) stay
native; Docker clients always send the version prefix on those.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.docker import (
    archive,
    attach,
    containers,
    errors,
    events,
    execs,
    images,
    lifecycle,
    networking,
    stats,
    swarm,
    system,
    version,
    volumes,
)

#: The Docker API's routers, in the order their routes are matched.
ROUTERS = (
    system,
    containers,
    lifecycle,
    archive,
    attach,
    execs,
    stats,
    images,
    networking,
    volumes,
    swarm,
    events,
)


class DockerHeaders:
    """``API-Version`` (and friends) on every answer of the Docker API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message = {**message, "headers": [*message.get("headers", []), *version.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_docker_app() -> FastAPI:
    docker = FastAPI(
        title="mydocker: Docker Engine API subset",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(docker)
    for module in ROUTERS:
        docker.include_router(module.router)
    docker.add_middleware(DockerHeaders)
    return docker


class DockerDispatch:
    def __init__(self, app: ASGIApp, native: FastAPI, docker: FastAPI) -> None:
        self.app = app
        self.native = native
        self.docker = docker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        prefixed = version.PREFIX.match(path)
        if prefixed:
            refusal = version.check(prefixed[1])
            if refusal is not None and scope["type"] == "http":
                response = errors.message(400, refusal)
                await DockerHeaders(response)(scope, receive, send)
                return
            rest = prefixed[2]
            raw: bytes = scope.get("raw_path") or path.encode()
            raw_rest = raw[raw.index(b"/", 1) :] if raw.startswith(b"/v") else rest.encode()
            scope = {**scope, "path": rest, "raw_path": raw_rest}
            await self.docker(scope, receive, send)
            return
        if not self._matches(self.native, scope) and self._matches(self.docker, scope):
            await self.docker(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _matches(app: FastAPI, scope: Scope) -> bool:
        return any(route.matches(scope)[0] != Match.NONE for route in app.router.routes)
