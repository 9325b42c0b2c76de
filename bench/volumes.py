"""What volumes and init add to a launch, as ratios to a plain one.

``python -m bench.volumes [RUNS]`` starts its own service (a temporary state
dir) and times ``POST /containers?wait=true`` of ``true`` in the busybox
image, round-robin between four kinds so machine noise hits all alike:
plain, ``init: true``, an existing named volume, a new anonymous volume
(made, filled from the image: nothing at ``/data``, and removed with the
container).  It prints each kind's median and its ratio to plain.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.service import Service

KINDS: dict[str, dict[str, Any]] = {
    "plain": {},
    "init": {"init": True},
    "named volume": {"mounts": [{"type": "volume", "source": "benchvol", "target": "/data"}]},
    "new anonymous volume": {"mounts": [{"type": "volume", "target": "/data"}]},
}


def main(runs: int = 30) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-volumes-") as tmp:
        service = Service(state_dir=Path(tmp) / "state")
        service.start()
        try:
            with httpx.Client(base_url=service.url, timeout=60) as client:
                client.post("/volumes", json={"name": "benchvol"})
                times = _measure(client, runs)
        finally:
            service.close()
    base = statistics.median(times["plain"])
    for kind, values in times.items():
        median = statistics.median(values)
        print(f"{kind:22s} median {median * 1000:6.1f} ms  ratio {median / base:.2f}")


def _measure(client: httpx.Client, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(runs):
        for kind, extra in KINDS.items():
            body = {"command": ["true"], "image": "busybox", **extra}
            started = time.perf_counter()
            made = client.post("/containers", params={"wait": "true"}, json=body).json()
            times[kind].append(time.perf_counter() - started)
            assert made["exit_code"] == 0, made
            client.delete(f"/containers/{made['id']}", params={"volumes": "true"})
    return times


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
