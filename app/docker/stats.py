"""``GET /containers/{id}/stats``: ``docker stats`` over the runtime's cgroup counters.

The runtime measures memory (now and peak), CPU time and tasks; Docker's
shape needs the host's CPU time too (``system_cpu_usage``, from
/proc/stat, proc(5)) so that clients compute a CPU percentage from two
samples.  One sample per second while streaming; with ``stream=0`` two
samples a second apart (the CPU percentage needs a previous one), or one
with ``one-shot=1``.  Network and block I/O are not measured: empty.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.deps import RuntimeDep
from app.docker.params import DockerBool
from runtime import ContainerRecord, Runtime, RuntimeFailure
from runtime.timeutil import now_rfc3339

router = APIRouter(tags=["docker containers"])

INTERVAL = 1.0
_TICKS = os.sysconf("SC_CLK_TCK")


def system_cpu_ns() -> int:
    """All CPUs' time since boot, in ns: the first line of /proc/stat (proc(5))."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(v) for v in fields[:8]) * 1_000_000_000 // _TICKS


def _sample(runtime: Runtime, record: ContainerRecord) -> dict[str, Any]:
    stats = runtime.stats(record.id)
    limits = record.spec.limits
    cpu_ns = round((stats.get("cpu_seconds") or 0) * 1e9)
    return {
        "read": now_rfc3339(),
        "pids_stats": {"current": stats.get("pids") or 0, "limit": limits.pids or 0},
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_ns},
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": os.cpu_count() or 1,
            "throttling_data": {},
        },
        "memory_stats": {
            "usage": stats.get("memory_bytes") or 0,
            "max_usage": stats.get("memory_peak_bytes") or 0,
            # Docker shows the host's memory when there is no limit.
            "limit": limits.memory_bytes
            or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "stats": {},
        },
        "blkio_stats": {},
        "networks": {},
        "name": "/" + record.name,
        "id": record.id,
    }


def _with_previous(sample: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    empty = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0}
    return {
        **sample,
        "preread": previous["read"] if previous else "0001-01-01T00:00:00Z",
        "precpu_stats": previous["cpu_stats"] if previous else empty,
    }


@router.get("/containers/{ref}/stats")
async def container_stats(
    ref: str,
    runtime: RuntimeDep,
    stream: DockerBool = True,
    one_shot: Annotated[DockerBool, Query(alias="one-shot")] = False,
) -> StreamingResponse:
    record = await run_in_threadpool(runtime.get, ref)
    first = await run_in_threadpool(_sample, runtime, record)  # 409 if not running

    async def samples() -> AsyncIterator[bytes]:
        previous: dict[str, Any] | None = None
        current = first
        if not stream and not one_shot:
            await asyncio.sleep(INTERVAL)
            previous, current = first, await run_in_threadpool(_sample, runtime, record)
        while True:
            yield json.dumps(_with_previous(current, previous)).encode() + b"\n"
            if not stream:
                return
            await asyncio.sleep(INTERVAL)
            try:
                previous, current = current, await run_in_threadpool(_sample, runtime, record)
            except RuntimeFailure:
                return  # it has exited: the stream ends

    return StreamingResponse(samples(), media_type="application/json")
