"""``python -m bench.apifloor``: the framework's floor of ``POST /containers?wait=true``.

The app of this tree (routers, middleware, validation, the response) called
as ASGI in this process, through httpx's ASGI transport, on the tests'
``FakeRuntime`` whose create and exit answer at once: what one launch
request costs the API before any container work.  Prints the CPU and the
wall time per request (the client's share included, in the same process),
and with ``--profile`` the functions that took the most CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import sys
import time

import httpx

from app.config import Settings
from app.main import create_app
from runtime.spec import Status
from tests.fakes.runtime import FakeRuntime

BODY = {"command": ["/bin/true"]}


async def measure(
    requests: int, warmup: int, profile: cProfile.Profile | None
) -> tuple[float, float]:
    """Seconds of CPU and of wall time per request."""
    fake = FakeRuntime()
    exited = dataclasses.replace(fake.record, status=Status.exited, exit_code=0)
    fake.exit.set_result(exited)
    app = create_app(Settings(), runtime=fake)
    app.state.runtime = fake  # the transport does not run the lifespan that sets it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:

        async def one() -> None:
            response = await client.post("/containers", params={"wait": "true"}, json=BODY)
            if response.status_code != 201:
                raise SystemExit(f"apifloor: {response.status_code} {response.text}")
            fake.calls.clear()  # the fake records every call: keep it from growing

        for _ in range(warmup):
            await one()
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        for _ in range(requests):
            await one()
        if profile is not None:
            profile.disable()
        return (time.process_time() - cpu) / requests, (time.perf_counter() - wall) / requests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.apifloor", description=__doc__)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--profile", action="store_true", help="print the top functions by CPU")
    args = p.parse_args(argv)
    profile = cProfile.Profile() if args.profile else None
    cpu, wall = asyncio.run(measure(args.requests, args.warmup, profile))
    print(
        f"POST /containers?wait=true on an instant runtime, ASGI in-process, "
        f"{args.requests} requests: CPU {cpu * 1000:.3f} ms, wall {wall * 1000:.3f} ms per request"
    )
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
