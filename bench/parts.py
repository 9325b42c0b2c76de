"""The measurements.  Each part interleaves its peers so noise hits them alike."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.peers import Peer, PeerError
from bench.rawhttp import Connection
from bench.service import Service, children_of, proc_status


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


# -- 1. latency --------------------------------------------------------------
def latency(peers: list[Peer], runs: int, warmup: int, seed: int = 7) -> dict[str, Any]:
    """``runs`` launches of each peer, round-robin in a shuffled order each round.

    A failed launch is counted, not timed; a peer is dropped once its
    failures pass 5% of the runs (at least 3)."""
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {p.name: [] for p in peers}
    failures: dict[str, int] = {p.name: 0 for p in peers}
    errors: dict[str, str] = {}
    live = list(peers)
    allowed = max(3, runs // 20)

    def attempt(peer: Peer, keep: bool) -> None:
        try:
            seconds = peer.once()
        except PeerError as err:
            failures[peer.name] += 1
            errors.setdefault(peer.name, str(err))
            if failures[peer.name] > allowed:
                live.remove(peer)
                log(f"dropping {peer.name} after {failures[peer.name]} failures: {err}")
            return
        if keep:
            samples[peer.name].append(seconds)

    for _ in range(warmup):
        for peer in list(live):
            attempt(peer, keep=False)
    for i in range(runs):
        order = list(live)
        rng.shuffle(order)
        for peer in order:
            attempt(peer, keep=True)
        if (i + 1) % 100 == 0:
            log(f"latency: {i + 1}/{runs} rounds")
    return {"samples": samples, "failures": failures, "errors": errors}


def cpu_per_launch(
    before: dict[str, Any], after: dict[str, Any], launches: int
) -> dict[str, float] | None:
    """CPU milliseconds per launch of the service under test: the API process,
    the launcher, the containers (the launcher's reaped children: their
    set-up before execve, /bin/true, and their exit), and the launcher's
    zygote (the pool's clones) when both snapshots have one."""
    main = ("api", "launcher")
    if not launches or not all(before.get(k) for k in main) or not all(after.get(k) for k in main):
        return None
    zygote = 0.0
    if before.get("zygote") and after.get("zygote"):
        zygote = (after["zygote"]["self"] - before["zygote"]["self"]) * 1e3 / launches
    return {
        "zygote": zygote,
        "api": (after["api"]["self"] - before["api"]["self"]) * 1e3 / launches,
        "launcher": (after["launcher"]["self"] - before["launcher"]["self"]) * 1e3 / launches,
        "containers": (after["launcher"]["children"] - before["launcher"]["children"])
        * 1e3
        / launches,
    }


def pool_claims(service: Service) -> dict[str, float]:
    """The warm pool's hits and misses so far, from the service's /metrics."""
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    found = {"hits": 0.0, "misses": 0.0}
    for line in text.splitlines():
        for outcome, key in (("hit", "hits"), ("miss", "misses")):
            if line.startswith(f'mydocker_pool_claims_total{{outcome="{outcome}"}} '):
                found[key] = float(line.rsplit(" ", 1)[1])
    return found


# -- 2. throughput -------------------------------------------------------------
Load = Callable[[int, float], tuple[int, float]]


def http_load(service: Service, body: dict[str, Any]) -> Load:
    """``clients`` keep-alive connections, each POSTing ?wait=true in a loop."""

    def run(clients: int, seconds: float) -> tuple[int, float]:
        async def main() -> tuple[int, float]:
            conns = [Connection("127.0.0.1", service.port) for _ in range(clients)]
            for conn in conns:
                await conn.open()
            done = 0
            failure: list[str] = []
            start = time.perf_counter()
            deadline = start + seconds

            async def worker(conn: Connection) -> None:
                nonlocal done
                while time.perf_counter() < deadline and not failure:
                    status, data = await conn.request("POST", "/containers?wait=true", body)
                    if status != 201 or json.loads(data).get("exit_code") != 0:
                        failure.append(f"{status} {data[:200]!r}")
                        return
                    done += 1

            await asyncio.gather(*(worker(c) for c in conns))
            elapsed = time.perf_counter() - start
            for conn in conns:
                await conn.close()
            if failure:
                raise PeerError(failure[0])
            return done, elapsed

        return asyncio.run(main())

    return run


def peer_load(peer: Peer, failures: list[str]) -> Load:
    """``clients`` threads, each running the peer's launch in a loop; a failed
    launch is not counted as done, and appended to ``failures``."""

    def run(clients: int, seconds: float) -> tuple[int, float]:
        counts = [0] * clients
        start = time.perf_counter()
        deadline = start + seconds

        def worker(k: int) -> None:
            while time.perf_counter() < deadline and len(failures) < 100:
                try:
                    peer.once()
                except PeerError as err:
                    failures.append(str(err))
                    continue
                counts[k] += 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(failures) >= 100:
            raise PeerError(failures[0])
        return sum(counts), time.perf_counter() - start

    return run


def throughput(
    loads: dict[str, Load], concurrency: list[int], seconds: float, slices: int, seed: int = 7
) -> dict[str, Any]:
    """Launches/s per peer and concurrency, from ``slices`` alternating slices."""
    rng = random.Random(seed)
    results: dict[str, dict[str, float]] = {name: {} for name in loads}
    errors: dict[str, str] = {}
    for clients in concurrency:
        totals = {name: [0, 0.0] for name in loads}
        for _ in range(slices):
            order = [n for n in loads if n not in errors]
            rng.shuffle(order)
            for name in order:
                try:
                    count, elapsed = loads[name](clients, seconds / slices)
                except PeerError as err:
                    errors[name] = str(err)
                    log(f"throughput: dropping {name}: {err}")
                    continue
                totals[name][0] += count
                totals[name][1] += elapsed
        for name, (count, elapsed) in totals.items():
            if elapsed:
                results[name][str(clients)] = count / elapsed
        log(
            f"throughput at {clients} clients: "
            + ", ".join(f"{n} {v.get(str(clients), 0):.0f}/s" for n, v in results.items())
        )
    return {"launches_per_second": results, "errors": errors}


# -- 4. scale ------------------------------------------------------------------
def _alive(pids: list[int]) -> int:
    # A zombie still has its /proc entry: only reaping removes it.
    return sum(os.path.exists(f"/proc/{p}") for p in pids)


def scale(service: Service, count: int, clients: int = 16, kill: str = "bulk") -> dict[str, Any]:
    """``count`` containers running ``sleep`` at once, then all killed.

    ``kill``: ``bulk`` is one ``POST /containers/kill`` of their label (what
    a user holding many sandboxes sends); ``each`` is one
    ``POST /containers/{id}/kill`` per container from ``clients`` clients."""
    # Warm up first at the same concurrency, so that "before" already has the
    # worker threads that any burst of requests makes (a pool, not per container).
    http_load(service, {"command": ["/bin/true"]})(clients, 0.5)
    api_pid, launcher_pid = service.pid, service.launcher_pid()
    before = {"api": proc_status(api_pid), "launcher": proc_status(launcher_pid)}
    label = f"mydocker-bench-scale={os.getpid()}-{count}"
    key, _, value = label.partition("=")
    body = {"command": ["sleep", "3600"], "labels": {key: value}}

    async def start_all() -> list[dict[str, Any]]:
        todo = list(range(count))
        started: list[dict[str, Any]] = []

        async def worker() -> None:
            conn = Connection("127.0.0.1", service.port)
            while todo:
                todo.pop()
                status, data = await conn.request("POST", "/containers", body)
                if status != 201:
                    raise PeerError(f"start: {status} {data[:200]!r}")
                started.append(json.loads(data))
            await conn.close()

        await asyncio.gather(*(worker() for _ in range(clients)))
        return started

    async def kill_bulk() -> int:
        conn = Connection("127.0.0.1", service.port)
        status, data = await conn.request("POST", "/containers/kill", {"labels": [label]})
        await conn.close()
        if status != 200:
            raise PeerError(f"bulk kill: {status} {data[:200]!r}")
        return len(json.loads(data)["killed"])

    async def kill_each(ids: list[str]) -> int:
        todo = list(ids)

        async def worker() -> None:
            conn = Connection("127.0.0.1", service.port)
            while todo:
                ref = todo.pop()
                status, data = await conn.request("POST", f"/containers/{ref}/kill")
                if status != 200:
                    raise PeerError(f"kill: {status} {data[:200]!r}")
            await conn.close()

        await asyncio.gather(*(worker() for _ in range(clients)))
        return len(ids)

    async def running_count(conn: Connection) -> int:
        status, data = await conn.request("GET", "/containers?status=running")
        return len(json.loads(data))

    t0 = time.perf_counter()
    started = asyncio.run(start_all())
    start_seconds = time.perf_counter() - t0
    pids = [c["pid"] for c in started]
    running = [c for c in started if c["status"] == "running"]
    time.sleep(0.5)  # let any lazily allocated state settle before sampling
    during = {"api": proc_status(api_pid), "launcher": proc_status(launcher_pid)}
    # The containers among the launcher's children (a warm pool's waiting
    # children are its children too, and are not containers).
    children = len(set(children_of(launcher_pid)) & set(pids)) if launcher_pid else None
    alive_before_kill = _alive(pids)

    t_kill = time.perf_counter()
    if kill == "bulk":
        killed = asyncio.run(kill_bulk())
    else:
        killed = asyncio.run(kill_each([c["id"] for c in started]))
    kills_seconds = time.perf_counter() - t_kill
    reaped_seconds = None
    while time.perf_counter() - t_kill < 60:
        if _alive(pids) == 0:
            reaped_seconds = time.perf_counter() - t_kill
            break
        time.sleep(0.005)

    async def until_recorded() -> float | None:
        conn = Connection("127.0.0.1", service.port)
        try:
            while time.perf_counter() - t_kill < 60:
                if await running_count(conn) == 0:
                    return time.perf_counter() - t_kill
                await asyncio.sleep(0.01)
            return None
        finally:
            await conn.close()

    recorded_seconds = asyncio.run(until_recorded())
    after = {"api": proc_status(api_pid), "launcher": proc_status(launcher_pid)}
    return {
        "containers": count,
        "running_after_start": len(running),
        "alive_before_kill": alive_before_kill,
        "launcher_children": children,
        "start_seconds": start_seconds,
        "kill_mode": kill,
        "kill_requests": 1 if kill == "bulk" else len(started),
        "killed": killed,
        "kill_requests_seconds": kills_seconds,
        "all_reaped_seconds_after_first_kill": reaped_seconds,
        "all_reaped_seconds_after_last_kill": (
            None if reaped_seconds is None else max(0.0, reaped_seconds - kills_seconds)
        ),
        "all_recorded_exited_seconds_after_first_kill": recorded_seconds,
        "before": before,
        "during": during,
        "after": after,
    }
