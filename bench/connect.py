"""``python -m bench.connect``: what connecting a running container to a
second network costs, against a launch on a bridge network.

As root, in a network namespace of its own (``bench.network.netns_service``:
the host's namespace is never touched), with two user networks and one
running container on the first.  Rows, interleaved in a shuffled order each
round, timed on the client:

    launch     ``POST /containers`` of ``["true"]`` on the first network
               (answered once the command has exec'd)
    connect    ``POST /containers/{id}/networks``: address, record, the
               launcher's hot-plugged veth and the address inside, names,
               /etc/hosts
    disconnect ``DELETE /containers/{id}/networks/{name}``

Prints JSON: median, p90 and min per row, and the medians' ratios to
``launch``.  docs/networking.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable

import httpx

from bench.network import _stats, netns_service


def measure(client: httpx.Client, runs: int, warmup: int) -> dict[str, list[float]]:
    client.post("/networks", json={"name": "one"}).raise_for_status()
    client.post("/networks", json={"name": "two"}).raise_for_status()
    box = client.post("/containers", json={"command": ["sleep", "3600"], "network": "one"})
    box.raise_for_status()
    cid = box.json()["id"]
    made: list[str] = []

    def launch() -> None:
        response = client.post("/containers", json={"command": ["true"], "network": "one"})
        response.raise_for_status()
        made.append(response.json()["id"])

    def connect() -> None:
        client.post(f"/containers/{cid}/networks", json={"network": "two"}).raise_for_status()

    def disconnect() -> None:
        client.delete(f"/containers/{cid}/networks/two").raise_for_status()

    rows: dict[str, Callable[[], None]] = {
        "launch": launch,
        "connect": connect,
        "disconnect": disconnect,
    }
    samples: dict[str, list[float]] = {name: [] for name in rows}
    rng = random.Random(7)
    for i in range(warmup + runs):
        # connect before disconnect; the launch anywhere among them
        order = ["connect", "disconnect"]
        order.insert(rng.randrange(3), "launch")
        for name in order:
            start = time.perf_counter()
            rows[name]()
            if i >= warmup:
                samples[name].append(time.perf_counter() - start)
        for container_id in made:
            client.post(f"/containers/{container_id}/wait")
            client.delete(f"/containers/{container_id}")
        made.clear()
    client.post(f"/containers/{cid}/kill")
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connect")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    with netns_service("bench-connect-") as served:
        samples = measure(served.client, args.runs, args.warmup)
    rows = {name: _stats(values) for name, values in samples.items()}
    launch = rows["launch"]["median_ms"]
    ratios = {n: round(r["median_ms"] / launch, 3) for n, r in rows.items() if n != "launch"}
    print(json.dumps({"runs": args.runs, "rows": rows, "median_vs_launch": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
