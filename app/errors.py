"""The one table from runtime errors to HTTP status codes."""

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
    RuntimeFailure,
    StorageFull,
    TooLarge,
    Unavailable,
)

STATUS_BY_ERROR: list[tuple[type[RuntimeFailure], int]] = [
    (InvalidArchive, 400),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (InvalidArgument, 422),
    (LimitReached, 429),
    (Unavailable, 503),
    # RFC 4918 11.5: the server cannot store what is needed to complete the request.
    (StorageFull, 507),
    (RuntimeFailure, 500),
]


def status_for(err: RuntimeFailure) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(err, cls):
            return status
    return 500


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
