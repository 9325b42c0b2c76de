"""Docker's error shape, ``{"message": "..."}``, for everything the Docker API answers.

The runtime's errors map through the native table (app/errors.py), except
that a bad parameter is Docker's 400 where the native API says 422; ``DockerError`` is for what only
this layer knows, e.g. an option we refuse.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import errors as native
from runtime.errors import InvalidArgument, LimitReached, RuntimeFailure


class DockerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_for(err: RuntimeFailure) -> int:
    """The native table (app/errors.py), but Docker says 400 for a bad argument."""
    return 400 if isinstance(err, InvalidArgument) else native.status_for(err)


def message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


def describe_validation(err: RequestValidationError) -> str:
    parts = []
    for error in err.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(RuntimeFailure)
    async def runtime_failure(request: Request, err: RuntimeFailure) -> JSONResponse:
        response = message(status_for(err), str(err))
        if isinstance(err, LimitReached):
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.exception_handler(DockerError)
    async def docker_error(request: Request, err: DockerError) -> JSONResponse:
        return message(err.status, err.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return message(400, describe_validation(err))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        text = "page not found" if err.status_code == 404 else str(err.detail)
        return message(err.status_code, text)
