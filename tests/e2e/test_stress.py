"""Concurrency and stress: many clients at once, every exit code right, no hang.

A hang is what the design exists to prevent (a clone from a multithreaded
process can copy a lock another thread holds, docs/architecture.md), so each
launch is bounded by a client timeout that fails the test.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx

from tests.e2e.conftest import Service

LAUNCH_TIMEOUT = 60.0  # seconds for one launch, far above the usual few ms


def test_wait_true_under_60_concurrent_requests(service: Service) -> None:
    count = 60
    barrier = threading.Barrier(count)
    limits = httpx.Limits(max_connections=count)

    with httpx.Client(base_url=service.url, timeout=LAUNCH_TIMEOUT, limits=limits) as client:

        def launch(n: int) -> tuple[int, dict[str, object]]:
            barrier.wait()
            # Each sleeps a little, so many are alive and waited on together.
            body = {"command": ["sh", "-c", f"sleep 0.3; exit {n}"], "name": None}
            response = client.post("/containers", params={"wait": "true"}, json=body)
            assert response.status_code == 201, response.text
            return n, response.json()

        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(launch, range(count)))

    assert len(results) == count
    for n, container in results:
        assert container["status"] == "exited", container
        assert (container["exit_code"], container["signal"], container["error"]) == (n, None, None)
    assert len({c["id"] for _, c in results}) == count
    # They were alive at the same time: a sweep over starts and ends.
    events = sorted(
        [(datetime.fromisoformat(str(c["started_at"])), 1) for _, c in results]
        + [(datetime.fromisoformat(str(c["finished_at"])), -1) for _, c in results]
    )
    alive = peak = 0
    for _, step in events:
        alive += step
        peak = max(peak, alive)
    assert peak >= 2


def test_two_thousand_launches_under_http_traffic(own_service: Service) -> None:
    own_service.start()
    launchers, per_launcher = 8, 250
    stop = threading.Event()
    failures: list[str] = []
    background_requests = 0
    lock = threading.Lock()

    def launch_many(worker: int) -> list[tuple[int, object]]:
        results: list[tuple[int, object]] = []
        with httpx.Client(base_url=own_service.url, timeout=LAUNCH_TIMEOUT) as client:
            for i in range(per_launcher):
                n = (worker * per_launcher + i) % 256
                command = ["/bin/true"] if n % 2 == 0 and n < 128 else ["sh", "-c", f"exit {n}"]
                expected = 0 if command == ["/bin/true"] else n
                # An httpx timeout raises here and fails the test: a hang.
                response = client.post(
                    "/containers", params={"wait": "true"}, json={"command": command}
                )
                assert response.status_code == 201, response.text
                results.append((expected, response.json()["exit_code"]))
        return results

    def background() -> None:
        nonlocal background_requests
        with httpx.Client(base_url=own_service.url, timeout=LAUNCH_TIMEOUT) as client:
            while not stop.is_set():
                for path, expected in [
                    ("/health", 200),
                    ("/containers/known", 200),
                    (f"/containers/{known['id'][:12]}", 200),
                    ("/containers?name=known", 200),
                    ("/containers/known/logs", 200),
                    ("/containers/no-such-thing", 404),
                ]:
                    status = client.get(path).status_code
                    with lock:
                        background_requests += 1
                        if status != expected:
                            failures.append(f"GET {path}: {status}")
                    # Steady traffic, not a flood that starves the launches
                    # of this busy machine's two cores.
                    stop.wait(0.005)

    with httpx.Client(base_url=own_service.url, timeout=LAUNCH_TIMEOUT) as client:
        known = client.post(
            "/containers", params={"wait": "true"}, json={"command": ["true"], "name": "known"}
        ).json()
    traffic = [threading.Thread(target=background) for _ in range(2)]
    for thread in traffic:
        thread.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(launchers) as pool:
            results = [r for batch in pool.map(launch_many, range(launchers)) for r in batch]
    finally:
        stop.set()
        for thread in traffic:
            thread.join()
    elapsed = time.monotonic() - started

    assert len(results) == launchers * per_launcher >= 2000
    wrong = [(expected, got) for expected, got in results if expected != got]
    assert wrong == []
    assert failures == []
    assert background_requests > 0
    with httpx.Client(base_url=own_service.url, timeout=LAUNCH_TIMEOUT) as client:
        for status in ("running", "created"):
            assert client.get("/containers", params={"status": status}).json() == []
        assert len(client.get("/containers").json()) == len(results) + 1
    print(f"{len(results)} launches in {elapsed:.1f} s with {background_requests} GETs alongside")
