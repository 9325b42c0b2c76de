"""Streaming an image upload to the runtime's import job.

Both the native ``POST /images`` and Docker's ``POST /images/create?fromSrc=-``
take a tar stream as the body; each chunk goes to disk in a worker thread as
it arrives, so an upload is never held in memory whole, and a failed or
abandoned upload leaves nothing behind.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runtime.api import RuntimeApi
from runtime.images import Image


async def import_body(runtime: RuntimeApi, name: str, request: Request) -> Image:
    job = await run_in_threadpool(runtime.begin_import, name)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(job.write, chunk)
    except BaseException:
        await run_in_threadpool(job.abort)
        raise
    return await run_in_threadpool(job.finish)
