"""``python -m bench.network``: what a bridge-attached launch adds over ``none``.

As root.  A real service (``python -m app --uds``) runs inside a network
namespace this command makes (``unshare --net``: the host's is never
touched), with one user network.  Rows, interleaved in a shuffled order each
round so that the machine's noise hits them alike, ``--runs`` launches each
of ``["true"]`` through ``POST /containers`` (the answer comes once the
command has exec'd), timed on the client:

    none          only lo (the default)
    bridge        on the user network: address, veth, eth0, route, /etc files
    bridge+port   the same with one published port (held, DNAT'ed, hairpin)

The containers are removed between rounds.  ``--live N`` first starts N
containers (``sleep``) on the same network that run throughout: what a
launch costs should not grow with them (its address and names come from an
index kept in memory, runtime/network/endpoints.py).  Prints JSON: median, p90 and min
per row, the medians' differences to ``none`` and the median of the paired
differences (each round's against its own ``none``); then the same for the CPU
each launch cost the API process and the launcher together (schedstat, read
before and after each request: what a launch costs on a CPU, which is what
the wall time multiplies on a loaded machine; kernel work done later in
workqueues, such as a namespace's teardown, is not in it); and the warm
pool's hits and misses over the run (a launch it misses takes the cold path).
docs/networking.md records the figures against the issue's budget (<= 1.5
ms added).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.service import ROOT, cpu_seconds, find_launcher, kill_leftovers


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[max(int(len(ms) * 0.9) - 1, 0)], 3),
        "min_ms": round(ms[0], 3),
    }


ROWS: dict[str, dict[str, Any]] = {
    "none": {},
    "bridge": {"network": "bench"},
    "bridge+port": {"network": "bench", "ports": [{"container_port": 80}]},
}


def service_cpu(pids: list[int | None]) -> float:
    """Seconds of CPU the processes ``pids`` (all threads) have used so far."""
    return sum(c["self"] for c in map(cpu_seconds, pids) if c is not None)


def measure(
    client: httpx.Client,
    runs: int,
    warmup: int,
    settle: float = 0.0,
    cpu: Callable[[], float] = lambda: 0.0,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall time and ``cpu()`` time of each launch, by row."""
    samples: dict[str, list[float]] = {name: [] for name in ROWS}
    cpu_samples: dict[str, list[float]] = {name: [] for name in ROWS}
    rng = random.Random(7)
    for i in range(warmup + runs):
        order = list(ROWS)
        rng.shuffle(order)
        made = []
        for name in order:
            body = {"command": ["true"], **ROWS[name]}
            used = cpu()
            start = time.perf_counter()
            response = client.post("/containers", json=body)
            elapsed = time.perf_counter() - start
            used = cpu() - used
            response.raise_for_status()
            made.append(response.json()["id"])
            if i >= warmup:
                samples[name].append(elapsed)
                cpu_samples[name].append(used)
        for container_id in made:
            client.post(f"/containers/{container_id}/wait")
            client.delete(f"/containers/{container_id}")
        time.sleep(settle)  # the kernel's namespace teardowns run in a workqueue
    return samples, cpu_samples


def summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Per row: median, p90, min; the medians' differences to ``none``; and
    the median of the paired differences (each round's launch minus the
    same round's ``none``: the rounds share the machine's load)."""
    rows = {name: _stats(values) for name, values in samples.items()}
    base_median = rows["none"]["median_ms"]
    added = {n: round(r["median_ms"] - base_median, 3) for n, r in rows.items() if n != "none"}
    paired = {
        n: round(
            statistics.median(a - b for a, b in zip(v, samples["none"], strict=True)) * 1000, 3
        )
        for n, v in samples.items()
        if n != "none"
    }
    return {"rows": rows, "added_median_ms": added, "added_paired_median_ms": paired}


@dataclass(frozen=True)
class NetnsService:
    """A service in a network namespace made for it, and a client over its
    unix socket."""

    client: httpx.Client
    pid: int
    state: Path


@contextmanager
def netns_service(
    prefix: str, api: tuple[str, ...] = ("app",), launcher: tuple[str, ...] = ()
) -> Iterator[NetnsService]:
    """Start ``python -m app`` in a new network namespace (``lo`` up; the
    host's namespace is never touched) with a temporary state dir; stop the
    service, its launcher and the namespace at the end.  The temporary dir is
    removed after a clean run and kept after a failure: its service.log.
    ``api``: the module (and its leading arguments) to run instead of
    ``app``; ``launcher``: a module to start first as the launcher (with
    ``--state-dir``), which the service then finds (bench.nettrace)."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
    base = Path(tempfile.mkdtemp(prefix=prefix))
    state, uds = base / "state", base / "api.sock"
    started: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(0.2)  # unshare(1) has exec'd sleep in the new namespace
        enter = ["nsenter", f"--net=/proc/{holder.pid}/ns/net"]
        subprocess.run([*enter, "ip", "link", "set", "lo", "up"], check=True)
        with open(base / "service.log", "wb") as log:
            if launcher:
                state.mkdir()
                argv = [sys.executable, "-m", *launcher, "--state-dir", str(state)]
                started.append(subprocess.Popen([*enter, *argv], cwd=ROOT, stdout=log, stderr=log))
                _wait_for(lambda: (state / "launcher.sock").exists(), started[-1])
            argv = [sys.executable, "-m", *api, "--uds", str(uds), "--state-dir", str(state)]
            started.append(subprocess.Popen([*enter, *argv], cwd=ROOT, stdout=log, stderr=log))
        transport = httpx.HTTPTransport(uds=str(uds))
        with httpx.Client(transport=transport, base_url="http://bench", timeout=60) as client:
            _wait_for(lambda: _healthy(client), started[-1])
            yield NetnsService(client, started[-1].pid, state)
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        found = find_launcher(state)
        if found is not None:
            subprocess.run(["kill", "-9", str(found)], check=False)
        kill_leftovers(state)
        holder.kill()
        holder.wait()
    shutil.rmtree(base, ignore_errors=True)


def _wait_for(done: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert process.poll() is None, "the service (or its launcher) exited: see service.log"
        assert time.monotonic() < deadline, "the service did not come up"
        time.sleep(0.05)


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def run(runs: int, warmup: int, settle: float = 0.2, live: int = 0) -> dict[str, Any]:
    """The three rows in a service of their own; the report ``main`` prints
    (also the ``network`` part of ``python -m bench``)."""
    with netns_service("bench-net-") as served:
        client = served.client
        client.post("/networks", json={"name": "bench"}).raise_for_status()
        for _ in range(live):
            body = {"command": ["sleep", "infinity"], "network": "bench"}
            client.post("/containers", json=body).raise_for_status()
        pids = [served.pid, find_launcher(served.state)]
        before = pool_claims(client)
        walls, cpus = measure(client, runs, warmup, settle, lambda: service_cpu(pids))
        after = pool_claims(client)
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
    claims = {outcome: after[outcome] - before[outcome] for outcome in after}
    return {
        "runs": runs,
        "live": live,
        "load_average": load,
        **summary(walls),
        "cpu": summary(cpus),
        "pool_claims": claims,
    }


def pool_claims(client: httpx.Client) -> dict[str, int]:
    """The warm pool's hits and misses so far (``/metrics``): how many
    launches of all rows it served, warm-up included."""
    found = {"hit": 0, "miss": 0}
    for line in client.get("/metrics").text.splitlines():
        for outcome in found:
            if line.startswith(f'mydocker_pool_claims_total{{outcome="{outcome}"}} '):
                found[outcome] = int(float(line.split()[-1]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.network")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--settle", type=float, default=0.2, help="seconds between rounds (namespace teardown)"
    )
    parser.add_argument(
        "--live", type=int, default=0, help="containers left running on the network meanwhile"
    )
    args = parser.parse_args(argv)
    print(json.dumps(run(args.runs, args.warmup, args.settle, args.live), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
