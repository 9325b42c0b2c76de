"""The one table from runtime errors to HTTP status codes, for both APIs.

    STATUS_BY_ERROR     runtime error class -> (native status, Docker status)
    status_for          the native API's status for an error
    docker_status_for   the Docker API's (app/docker/errors.py answers with it)
    docker_message      Docker's wording of an error, where its clients read it
    install             the native API's handlers: ``{"detail": ...}`` bodies

The two APIs answer alike but for two rows: a bad argument is the native
API's 422 (the same shape as FastAPI's own) and Docker's 400, and an
operation that finds its target already so (``NotModified``) is a conflict
to the native API and Docker's 304 ("container already started/stopped").
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from runtime.errors import (
    Conflict,
    Forbidden,
    InvalidArchive,
    InvalidArgument,
    LimitReached,
    NotFound,
    NotModified,
    RegistryTimeout,
    RegistryUnavailable,
    RuntimeFailure,
    StorageFull,
    TooLarge,
    Unavailable,
)

#: The first row whose class the error is an instance of decides (subclasses first).
STATUS_BY_ERROR: list[tuple[type[RuntimeFailure], int, int]] = [
    # RFC 9110 15.4.5: 304 is for "already so" in Docker's API only.
    (NotModified, 409, 304),
    (InvalidArchive, 400, 400),
    (Forbidden, 403, 403),
    (NotFound, 404, 404),
    (Conflict, 409, 409),
    (TooLarge, 413, 413),
    (InvalidArgument, 422, 400),
    (LimitReached, 429, 429),
    # RFC 9110 15.6.5 and 15.6.3: a registry behind the service failed or was too slow.
    (RegistryTimeout, 504, 504),
    (RegistryUnavailable, 502, 502),
    (Unavailable, 503, 503),
    # RFC 4918 11.5: the server cannot store what is needed to complete the request.
    (StorageFull, 507, 507),
    (RuntimeFailure, 500, 500),
]


def _row(err: RuntimeFailure) -> tuple[int, int]:
    for cls, native, docker in STATUS_BY_ERROR:
        if isinstance(err, cls):
            return native, docker
    return 500, 500


def status_for(err: RuntimeFailure) -> int:
    return _row(err)[0]


def docker_status_for(err: RuntimeFailure) -> int:
    return _row(err)[1]


#: Docker's "not found" sentences where clients read them: docker-py makes
#: a 404 an ``ImageNotFound`` only when its message says "No such image"
#: (docker/errors.py, create_api_error_from_http_exception), and an exec's
#: 404 keeps the daemon's wording.  A missing container keeps the runtime's
#: sentence ("no such container: x"): clients go by the 404 alone.
DOCKER_NOT_FOUND = {
    "image": "No such image",
    "exec": "No such exec instance",
}


def docker_message(err: RuntimeFailure) -> str:
    """What Docker's ``{"message": ...}`` says for ``err``: Docker's own
    wording for a missing image or exec, the runtime's sentence for the rest."""
    if isinstance(err, NotFound) and err.kind in DOCKER_NOT_FOUND:
        return f"{DOCKER_NOT_FOUND[err.kind]}: {err.ref}"
    return str(err)


def _detail(err: RuntimeFailure, request: Request) -> object:
    if isinstance(err, InvalidArgument):
        # The same shape as FastAPI's own 422s, so clients parse one format.
        where = "query" if err.field in request.query_params else "body"
        # "limits.cpus" -> ["body", "limits", "cpus"], "mounts.0.source" ->
        # ["body", "mounts", 0, "source"], as pydantic reports nested fields.
        loc = [where, *(int(p) if p.isdigit() else p for p in err.field.split("."))]
        return [{"loc": loc, "msg": err.message, "type": "value_error"}]
    return str(err)


#: The methods a 405's Allow header may name (RFC 9110 9.3).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette names only
    those of the first route that matched the path).  Asked of each route
    through ``matches``, which also sees into included routers."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code == 405:
            # RFC 9110 15.5.6: a 405 lists in Allow what the resource takes.
            allow = ", ".join(allowed_methods(app, request.scope))
            err = StarletteHTTPException(
                405, err.detail, headers={**(err.headers or {}), "Allow": allow}
            )
        return await http_exception_handler(request, err)

    @app.exception_handler(RuntimeFailure)
    async def runtime_failure(request: Request, err: RuntimeFailure) -> JSONResponse:
        headers = {}
        if isinstance(err, LimitReached):
            # RFC 9110 10.2.3: when to try again, in seconds.
            headers["Retry-After"] = str(err.retry_after)
        return JSONResponse(
            {"detail": _detail(err, request)}, status_code=status_for(err), headers=headers
        )
