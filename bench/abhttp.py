"""``python -m bench.abhttp --base DIR``: this tree's API against another's, over HTTP.

``bench.ab``'s pairing for a change on the API's side: two services, one
from this tree and one from ``DIR`` (a checkout of another commit, e.g.
``git archive main | tar -x -C DIR``), each with its own state dir and its
own launcher, and this tree's runtime in-process on a third state dir.
Each round launches ``/bin/true`` once on each of the three, in a shuffled
order, so that the machine's noise hits all alike: ``POST
/containers?wait=true`` on a kept-alive connection (bench/rawhttp.py) for
the services, ``Runtime.create`` + ``wait`` in-process.  Prints each arm's
median, mean and p95, each service's HTTP overhead (its median minus the
in-process median: issue 17's "HTTP adds <= 1 ms"), the paired difference
(this tree minus base) and each API process's CPU per launch (all its
threads, /proc schedstat; the launcher is a process of its own and not in it).
``--fake-launcher`` puts every arm on bench/fakelauncher.py: the API's
side alone, without the launch's noise.  ``--op get`` pairs
``GET /containers/{id}`` instead (no in-process arm): a handler's cost
without a launch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.rawhttp import Connection
from bench.service import QUIET, Service, cpu_seconds, kill_leftovers

WARMUP = 10
BODY = {"command": ["/bin/true"]}


def _quantile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


async def _over_http(connection: Connection, image: str | None) -> None:
    body = {**BODY, **({"image": image} if image else {})}
    status, data = await connection.request("POST", "/containers?wait=true", body)
    if status != 201 or b'"exit_code":0' not in data:
        raise SystemExit(f"abhttp: launch failed: {status} {data[:300]!r}")


async def _remove(connection: Connection, image: str | None) -> float:
    """A container run to its exit (not timed), then ``DELETE`` of it: ms."""
    body = {**BODY, **({"image": image} if image else {})}
    status, data = await connection.request("POST", "/containers?wait=true", body)
    if status != 201:
        raise SystemExit(f"abhttp: launch failed: {status} {data[:300]!r}")
    start = time.perf_counter()
    status, data = await connection.request("DELETE", f"/containers/{json.loads(data)['id']}")
    if status != 204:
        raise SystemExit(f"abhttp: DELETE: {status} {data[:300]!r}")
    return (time.perf_counter() - start) * 1e3


async def _get(connection: Connection, path: str) -> None:
    status, data = await connection.request("GET", path)
    if status != 200:
        raise SystemExit(f"abhttp: GET {path}: {status} {data[:300]!r}")


async def _rounds(
    services: dict[str, Service], runs: int, image: str | None, state: Path, op: str
) -> tuple[dict[str, list[float]], dict[str, float]]:
    from runtime import Runtime
    from runtime.spec import CreateRequest

    runtime = Runtime.open(str(state))
    runtime.start()
    request = CreateRequest(("/bin/true",), image=image)
    connections = {name: Connection("127.0.0.1", s.port) for name, s in services.items()}
    arms = [*services, "in-process"] if op == "run" else [*services]
    walls: dict[str, list[float]] = {name: [] for name in arms}
    cpu: dict[str, float] = {}
    paths = {}
    for name, connection in connections.items():  # the container a GET reads
        status, data = await connection.request("POST", "/containers?wait=true", BODY)
        paths[name] = f"/containers/{json.loads(data)['id']}"
    try:
        for i in range(WARMUP + runs):
            if i == WARMUP:
                cpu = {name: _cpu(s) for name, s in services.items()}
            order = list(walls)
            random.shuffle(order)
            for name in order:
                start = time.perf_counter()
                if op == "remove":
                    removed = await _remove(connections[name], image)
                    if i >= WARMUP:
                        walls[name].append(removed)
                    continue
                if op == "get":
                    await _get(connections[name], paths[name])
                elif name == "in-process":
                    record = await asyncio.to_thread(
                        lambda: runtime.wait(runtime.create(request).id)
                    )
                    if record.exit_code != 0:
                        raise SystemExit(f"abhttp: in-process launch failed: {record}")
                else:
                    await _over_http(connections[name], image)
                if i >= WARMUP:
                    walls[name].append((time.perf_counter() - start) * 1e3)
        cpu = {name: (_cpu(s) - cpu[name]) / runs * 1e3 for name, s in services.items()}
    finally:
        for connection in connections.values():
            await connection.close()
        runtime.close()
    return walls, cpu


def fake_launcher(state: Path) -> subprocess.Popen[bytes]:
    """bench.fakelauncher listening in ``state`` (the service then uses it)."""
    state.mkdir(parents=True)
    fake = subprocess.Popen([sys.executable, "-m", "bench.fakelauncher", "--state-dir", str(state)])
    deadline = time.monotonic() + 20
    while not (state / "launcher.sock").exists():
        if time.monotonic() > deadline or fake.poll() is not None:
            raise SystemExit(f"abhttp: the fake launcher did not come up in {state}")
        time.sleep(0.02)
    return fake


def _cpu(service: Service) -> float:
    seconds = cpu_seconds(service.pid)
    assert seconds is not None
    return seconds["self"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.abhttp", description=__doc__)
    p.add_argument("--base", required=True, help="the other source tree (its app/ runs)")
    p.add_argument("--runs", type=int, default=200, help="launches per arm")
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's default)")
    p.add_argument(
        "--op",
        choices=["run", "get", "remove"],
        default="run",
        help="run: POST /containers?wait=true (and in-process); get: GET /containers/{id}; "
        "remove: DELETE /containers/{id} of a container just run (its run not timed)",
    )
    p.add_argument(
        "--fake-launcher",
        action="store_true",
        help="every arm on bench.fakelauncher (answers at once, launches nothing): "
        "the API's side alone",
    )
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mydocker-abhttp-", dir="/var/tmp"))
    fakes: list[subprocess.Popen[bytes]] = []
    services = {
        "base": Service(work / "base" / "state", extra_args=QUIET, tree=Path(args.base).resolve()),
        "this": Service(work / "this" / "state", extra_args=QUIET),
    }
    try:
        if args.fake_launcher:
            states = [s.state_dir for s in services.values()] + [work / "inproc"]
            fakes = [fake_launcher(state) for state in states]
        for service in services.values():
            service.start()
        walls, cpu = asyncio.run(_rounds(services, args.runs, args.image, work / "inproc", args.op))
    finally:
        for service in services.values():
            service.close()
        for fake in fakes:
            fake.terminate()
            fake.wait(10)
        # The in-process arm's launcher left its pid files' tmpfs (runtime/rundir.py).
        kill_leftovers(work / "inproc")
        shutil.rmtree(work, ignore_errors=True)
    what = {
        "run": "launches of /bin/true",
        "get": "GET /containers/{id}",
        "remove": "DELETE /containers/{id} (API CPU: the run and the DELETE)",
    }[args.op]
    print(
        f"{args.runs} {what} per arm ({args.image or 'default image'}), "
        f"interleaved; load average {os.getloadavg()[0]:.2f} at the end"
    )
    floor = statistics.median(walls["in-process"]) if "in-process" in walls else 0.0
    for name, values in walls.items():
        median = statistics.median(values)
        gap = f"  HTTP adds {median - floor:5.2f} ms" if floor else ""
        extra = f"{gap}  API CPU {cpu[name]:5.3f} ms/request" if name in cpu else ""
        print(
            f"  {name:10s} median {median:6.2f}  mean {statistics.mean(values):6.2f}  "
            f"p95 {_quantile(values, 0.95):6.2f} ms{extra}"
        )
    diffs = [b - a for a, b in zip(walls["base"], walls["this"], strict=True)]
    half = 1.96 * statistics.stdev(diffs) / len(diffs) ** 0.5
    base_gap = statistics.median(walls["base"]) - floor
    this_gap = statistics.median(walls["this"]) - floor
    print(
        f"  this - base, paired: median {statistics.median(diffs):+.2f} ms, mean "
        f"{statistics.mean(diffs):+.2f} ms (95% {statistics.mean(diffs) - half:+.2f} to "
        f"{statistics.mean(diffs) + half:+.2f}); HTTP overhead this / base "
        f"{this_gap / base_gap if floor and base_gap > 0 else float('nan'):.3f}; "
        f"API CPU this / base {cpu['this'] / cpu['base']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
