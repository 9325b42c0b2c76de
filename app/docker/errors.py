"""Docker's error shape, ``{"message": "..."}``, for everything the Docker API answers.

The runtime's errors map through the one table (app/errors.py: its Docker
column and Docker's wording); a 304 has no body.  ``DockerError`` is for what
only this layer knows: a body or parameter it refuses, never a container's
state (the runtime raises those).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from app import errors as table
from runtime.errors import LimitReached, RuntimeFailure


class DockerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_for(err: RuntimeFailure) -> int:
    """The Docker column of the one table (app/errors.py)."""
    return table.docker_status_for(err)


def message(status: int, text: str) -> Response:
    if status == 304:  # RFC 9110 15.4.5: no content
        return Response(status_code=304)
    return JSONResponse({"message": text}, status_code=status)


def runtime_error(err: RuntimeFailure) -> Response:
    """``err`` as Docker answers it: the table's status, Docker's wording."""
    response = message(status_for(err), table.docker_message(err))
    if isinstance(err, LimitReached):
        response.headers["Retry-After"] = str(err.retry_after)
    return response


def describe_validation(err: RequestValidationError) -> str:
    parts = []
    for error in err.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(RuntimeFailure)
    async def runtime_failure(request: Request, err: RuntimeFailure) -> Response:
        return runtime_error(err)

    @app.exception_handler(DockerError)
    async def docker_error(request: Request, err: DockerError) -> Response:
        return message(err.status, err.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        return message(400, describe_validation(err))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Response:
        text = "page not found" if err.status_code == 404 else str(err.detail)
        return message(err.status_code, text)
