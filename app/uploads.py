"""Streaming an image upload to the runtime's import job.

Both the native ``POST /images`` and Docker's ``POST /images/create?fromSrc=-``
take a tar stream as the body (and both ``POST /images/load`` a saved image);
each chunk goes to disk in a worker thread as it arrives, so an upload is
never held in memory whole, and a failed or abandoned upload leaves nothing
behind.  ``spooled_body`` hands a body to a
runtime call that reads a file (``PUT /containers/{id}/archive``).
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runtime.api import RuntimeApi
from runtime.images import Image
from runtime.images.building import BuildRequest


async def import_body(runtime: RuntimeApi, name: str, request: Request) -> Image:
    job = await run_in_threadpool(runtime.begin_import, name)
    image: Image = await _stream_into(job, request)
    return image


async def build_body(runtime: RuntimeApi, request: Request, wanted: BuildRequest) -> Image:
    """Docker's import: the body into a new image with a config (``wanted``'s changes)."""
    job = await run_in_threadpool(runtime.begin_image_import, wanted)
    image: Image = await _stream_into(job, request)
    return image


async def load_body(runtime: RuntimeApi, request: Request) -> list[Image]:
    """A ``docker save`` or OCI-layout tarball into the runtime's load."""
    job = await run_in_threadpool(runtime.begin_load)
    images: list[Image] = await _stream_into(job, request)
    return images


async def _stream_into(job: Any, request: Request) -> Any:
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(job.write, chunk)
    except BaseException:
        await run_in_threadpool(job.abort)
        raise
    return await run_in_threadpool(job.finish)


#: A body spooled for a runtime call that reads a file (an archive put into a
#: container) stays in memory up to this size, then goes to a temporary file.
SPOOL_MEMORY = 8 << 20


async def spooled_body(request: Request) -> IO[bytes]:
    """The request's body as a file at its start; the caller closes it."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool
