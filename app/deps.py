"""Dependencies: the seam where tests swap the runtime for a fake.

get_runtime     the runtime the app was created with (``app.state.runtime``)
RuntimeDep      a handler's runtime, typed as the protocol ``runtime.api.RuntimeApi``:
                the real ``Runtime`` or the tests' ``FakeRuntime``
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from runtime.api import RuntimeApi


async def get_runtime(connection: HTTPConnection) -> RuntimeApi:
    # HTTPConnection, not Request: upgraded connections (app/upgrade.py) need it too.
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a
    # thread hop on every request for one attribute read.
    runtime: RuntimeApi = connection.app.state.runtime
    return runtime


RuntimeDep = Annotated[RuntimeApi, Depends(get_runtime)]
