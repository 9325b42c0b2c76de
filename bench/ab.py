"""``python -m bench.ab --base DIR``: this tree's launcher against another's.

For a change to the launcher or the child, on a machine whose load swings
more between two benchmark runs than the change itself moves the figures:
starts two launchers, one from this tree and one from ``DIR`` (a checkout of
another commit, e.g. ``git archive main | tar -x -C DIR``), each with its own
state dir, drives both with this tree's runtime in-process (the launcher
protocol must be the same in both), and launches ``/bin/true`` on each in
turn, in a shuffled order every round, so that the machine's noise hits
both alike.  Prints median, mean, p90 and p95 of each, and the median and
mean of the paired differences (this tree minus base), in ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.service import kill_leftovers

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 10


def _quantile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab")
    p.add_argument("--base", required=True, help="the other source tree (its runtime/ is used)")
    p.add_argument("--runs", type=int, default=300, help="launches per tree")
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's default)")
    p.add_argument(
        "--pool-size",
        type=int,
        default=0,
        help="a warm pool of the image in both launchers (default: cold)",
    )
    args = p.parse_args(argv)
    from runtime import Runtime
    from runtime.spec import CreateRequest

    trees = {"base": os.path.abspath(args.base), "this": str(ROOT)}
    work = Path(tempfile.mkdtemp(prefix="mydocker-ab-", dir="/var/tmp"))
    launchers: dict[str, subprocess.Popen[bytes]] = {}
    runtimes: dict[str, Runtime] = {}
    walls: dict[str, list[float]] = {name: [] for name in trees}
    request = CreateRequest(("/bin/true",), image=args.image)
    try:
        for name, tree in trees.items():
            state = work / name
            state.mkdir()
            with open(work / f"{name}.log", "wb") as log:
                launchers[name] = subprocess.Popen(
                    [sys.executable, "-m", "runtime.launcher", "--state-dir", str(state)],
                    cwd=tree,
                    env={**os.environ, "PYTHONPATH": tree},
                    stderr=log,
                )
            deadline = time.monotonic() + 20
            while not (state / "launcher.sock").exists():
                if time.monotonic() > deadline or launchers[name].poll() is not None:
                    raise SystemExit(f"the {name} launcher did not come up: {work / name}.log")
                time.sleep(0.05)
            # An image other than the default is kept warm as many times.
            images = ((args.image, args.pool_size),) if args.image else ()
            runtimes[name] = Runtime.open(str(state), pool_size=args.pool_size, pool_images=images)
            runtimes[name].start()
        for i in range(WARMUP + args.runs):
            order = list(trees)
            random.shuffle(order)
            for name in order:
                start = time.perf_counter()
                record = runtimes[name].wait(runtimes[name].create(request).id)
                if i >= WARMUP:
                    walls[name].append((time.perf_counter() - start) * 1e3)
                if record.exit_code != 0:
                    raise SystemExit(f"{name}: launch failed: {record}")
    finally:
        for runtime in runtimes.values():
            runtime.close()
        for launcher in launchers.values():
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(10)
        for name in trees:  # the pid files' tmpfs (runtime/rundir.py), if left
            kill_leftovers(work / name)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.runs} launches of /bin/true each ({args.image or 'default image'}, "
        f"pool {args.pool_size}), interleaved; load average {os.getloadavg()[0]:.2f} at the end"
    )
    for name, values in walls.items():
        print(
            f"  {name:5s} median {statistics.median(values):6.2f}  "
            f"mean {statistics.mean(values):6.2f}  p90 {_quantile(values, 0.9):6.2f}  "
            f"p95 {_quantile(values, 0.95):6.2f} ms"
        )
    diffs = [b - a for a, b in zip(walls["base"], walls["this"], strict=True)]
    # The spread: a 95% interval of the mean paired difference (normal
    # approximation), and the ratio of the medians with it.
    half = 1.96 * statistics.stdev(diffs) / len(diffs) ** 0.5
    print(
        f"  this - base, paired: median {statistics.median(diffs):+.2f} ms, "
        f"mean {statistics.mean(diffs):+.2f} ms (95% {statistics.mean(diffs) - half:+.2f} "
        f"to {statistics.mean(diffs) + half:+.2f}); this / base: medians "
        f"{statistics.median(walls['this']) / statistics.median(walls['base']):.3f}, "
        f"means {statistics.mean(walls['this']) / statistics.mean(walls['base']):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
