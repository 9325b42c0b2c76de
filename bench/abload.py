"""``python -m bench.abload --base DIR``: this tree's service against another's, under load.

``bench.ab`` compares two launchers one launch at a time; a change to how
the launcher spends its CPU (the warm pool's refill, the exit's work) shows
best as launches per second with many clients.  This starts two services,
one from this tree and one from ``DIR`` (``git archive <commit> | tar -x -C
DIR``), each with its own state dir and its own pool size, and runs
``--slices`` alternating slices of ``--clients`` keep-alive clients
POSTing ``?wait=true`` (``bench.parts.http_load``) on each, in a shuffled
order, so that the machine's noise hits both alike.  Prints, per tree: the
launches per second, the CPU per launch of the API, the launcher and the
containers, and the warm pool's hits and misses over the slices.

``--fake-launcher`` puts both services on bench/fakelauncher.py (answers a
create at once, its exit right after, launches nothing): the API's side
alone under load, saturated, so its CPU per launch is the figure, without
the clones' noise.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.abhttp import fake_launcher
from bench.parts import cpu_per_launch, http_load, pool_claims
from bench.service import QUIET, ROOT, Service, cpu_seconds, zygote_of

WARMUP_SECONDS = 1.0


def _snapshot(service: Service, fake: int | None = None) -> dict[str, Any]:
    launcher = fake or service.launcher_pid()
    return {
        "api": cpu_seconds(service.pid),
        "launcher": cpu_seconds(launcher),
        "zygote": cpu_seconds(zygote_of(launcher)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.abload")
    p.add_argument("--base", required=True, help="the other source tree")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0, help="per slice")
    p.add_argument("--slices", type=int, default=6, help="slices per tree")
    p.add_argument("--pool-size", type=int, default=4)
    p.add_argument("--base-pool-size", type=int, default=None, help="default: --pool-size")
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's)")
    p.add_argument(
        "--auto-remove",
        action="store_true",
        help="each container removed at its exit (docker run --rm): the removal's cost too",
    )
    p.add_argument(
        "--fake-launcher",
        action="store_true",
        help="both services on bench.fakelauncher (launches nothing): the API's side alone",
    )
    args = p.parse_args(argv)
    trees = {"base": Path(args.base).resolve(), "this": ROOT}
    work = Path(tempfile.mkdtemp(prefix="mydocker-abload-", dir="/var/tmp"))
    sizes = {"base": args.pool_size, "this": args.pool_size}
    if args.base_pool_size is not None:
        sizes["base"] = args.base_pool_size
    services = {
        name: Service(
            work / name / "state", extra_args=[*QUIET, "--pool-size", str(sizes[name])], tree=tree
        )
        for name, tree in trees.items()
    }
    body: dict[str, Any] = {"command": ["/bin/true"]}
    if args.image:
        body["image"] = args.image
    if args.auto_remove:
        body["auto_remove"] = True
    done = {name: [0, 0.0] for name in trees}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    claims: dict[str, list[float]] = {name: [0.0, 0.0] for name in trees}
    fakes: dict[str, Any] = {}
    try:
        if args.fake_launcher:
            fakes = {name: fake_launcher(s.state_dir) for name, s in services.items()}
        pids = {name: fake.pid for name, fake in fakes.items()}
        for service in services.values():
            service.start()
            http_load(service, body)(args.clients, WARMUP_SECONDS)
        order = list(trees)
        for _ in range(args.slices):
            random.shuffle(order)
            for name in order:
                service = services[name]
                before, hits = _snapshot(service, pids.get(name)), pool_claims(service)
                count, elapsed = http_load(service, body)(args.clients, args.seconds)
                after, hits_after = _snapshot(service, pids.get(name)), pool_claims(service)
                done[name][0] += count
                done[name][1] += elapsed
                per = cpu_per_launch(before, after, count)
                if per is not None:
                    cpu[name].append({k: v * count for k, v in per.items()})
                claims[name][0] += hits_after["hits"] - hits["hits"]
                claims[name][1] += hits_after["misses"] - hits["misses"]
    finally:
        for service in services.values():
            service.close()
        for fake in fakes.values():
            fake.terminate()
            fake.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.clients} clients, {args.slices} slices of {args.seconds:.1f} s per tree "
        f"({args.image or 'default image'}, pool {sizes['this']}, base's {sizes['base']}"
        f"{', auto-removed' if args.auto_remove else ''}"
        f"{', fake launcher' if args.fake_launcher else ''}), "
        "interleaved; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    rates = {}
    for name in trees:
        count, elapsed = done[name]
        rates[name] = count / elapsed if elapsed else 0.0
        parts = {
            k: sum(c[k] for c in cpu[name]) / max(1, count)
            for k in ("api", "launcher", "zygote", "containers")
        }
        hits, misses = claims[name]
        print(
            f"  {name:5s} {rates[name]:6.1f} launches/s; CPU per launch (ms): "
            f"API {parts['api']:.2f}, launcher {parts['launcher']:.2f}, "
            f"zygote {parts['zygote']:.2f}, containers {parts['containers']:.2f}, "
            f"total {sum(parts.values()):.2f}; pool {hits:.0f} hits, {misses:.0f} misses"
        )
    if rates["base"]:
        print(f"  this / base: {rates['this'] / rates['base']:.3f} launches/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
