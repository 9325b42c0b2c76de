"""Dependencies: the seam where tests swap the runtime for a fake."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from runtime import Runtime


async def get_runtime(connection: HTTPConnection) -> Runtime:
    # HTTPConnection, not Request: upgraded connections (app/upgrade.py) need it too.
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a
    # thread hop on every request for one attribute read.
    runtime: Runtime = connection.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
