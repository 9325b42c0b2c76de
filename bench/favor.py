"""``python -m bench.favor``: cold launches with and without favordynmods.

favordynmods is machine-wide (runtime/cgroups/dynmods.py): one hierarchy
anywhere flips the cgroup core's semaphore for every launcher, so two
launchers side by side (``bench.ab``) cannot compare it.  This runs one
launcher of this tree (without ``--favordynmods``) and the runtime in-process
with no warm pool (every launch cold: mkdir, clone, join), and alternates
in time: blocks of launches while this process holds a favordynmods
hierarchy of its own, and blocks without, in a shuffled order.  After each
switch it waits ``--settle`` seconds (the semaphore leaves its slow mode
one RCU grace period after the hierarchy goes) and drops the block's first
launch.  Prints, per mode, the launch's wall time and the launcher's join
span (``go_sent`` to ``cgroup_joined``, runtime/launchtrace.py): median,
mean, p90, p95, in ms, and whether another holder was seen (then "free"
was not free).

On Linux >= 6.18 the first favordynmods hierarchy switches ``cgroup.procs``
writes to a per-thread-group rwsem until reboot (runtime/cgroups/dynmods.py):
there both modes measure the switched kernel after the first held block,
and only a machine that never held one since boot shows the difference.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runtime.cgroups import dynmods
from runtime.launchtrace import LaunchTrace

NAME = "mydocker-bench-favor"


def _quantile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


def _others_hold() -> bool:
    """Does a favordynmods-capable hierarchy of another holder exist now?"""
    with open("/proc/self/cgroup") as f:
        return ":name=mydocker:" in f.read()


def _summary(label: str, values: list[float]) -> str:
    return (
        f"  {label:14s} median {statistics.median(values):6.2f}  "
        f"mean {statistics.mean(values):6.2f}  p90 {_quantile(values, 0.9):6.2f}  "
        f"p95 {_quantile(values, 0.95):6.2f} ms  (n={len(values)})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.favor")
    p.add_argument("--blocks", type=int, default=20, help="blocks per mode")
    p.add_argument("--block", type=int, default=11, help="launches per block (first dropped)")
    p.add_argument("--settle", type=float, default=0.2, help="seconds after each switch")
    p.add_argument("--image", default=None)
    args = p.parse_args(argv)
    from runtime import Runtime
    from runtime.spec import CreateRequest

    joins: list[float] = []

    def on_launch(trace: LaunchTrace) -> None:
        t = trace.timeline
        if t is not None and t.go_sent is not None and t.cgroup_joined is not None:
            joins.append((t.cgroup_joined - t.go_sent) / 1e6)

    work = Path(tempfile.mkdtemp(prefix="mydocker-favor-", dir="/var/tmp"))
    runtime = Runtime.open(str(work / "state"), on_launch=on_launch, favordynmods=False)
    walls: dict[str, list[float]] = {"held": [], "free": []}
    join_ms: dict[str, list[float]] = {"held": [], "free": []}
    contaminated = 0
    request = CreateRequest(("/bin/true",), image=args.image)
    try:
        runtime.start()
        for _ in range(5):
            runtime.wait(runtime.create(request).id)
        modes = ["held", "free"] * args.blocks
        random.shuffle(modes)
        for number, mode in enumerate(modes):
            # A name per block: the last block's hierarchy may still be dying.
            fd = dynmods.hold(f"{NAME}-{number}") if mode == "held" else None
            if mode == "held" and fd is None:
                raise SystemExit("this kernel refuses favordynmods")
            time.sleep(args.settle)
            contaminated += mode == "free" and _others_hold()
            try:
                for i in range(args.block):
                    joins.clear()
                    start = time.perf_counter()
                    record = runtime.wait(runtime.create(request).id)
                    wall = (time.perf_counter() - start) * 1e3
                    if record.exit_code != 0:
                        raise SystemExit(f"launch failed: {record}")
                    if i > 0:
                        walls[mode].append(wall)
                        join_ms[mode].extend(joins)
            finally:
                if fd is not None:
                    os.close(fd)
    finally:
        runtime.close()
        launcher = runtime.launcher.launcher_pid
        if launcher is not None:
            os.kill(launcher, 15)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"cold launches of /bin/true ({args.image or 'default image'}), blocks of "
        f"{args.block - 1} alternated in time; load average {os.getloadavg()[0]:.2f} at the end"
    )
    for mode in ("held", "free"):
        print(_summary(f"{mode} launch", walls[mode]))
        if join_ms[mode]:
            print(_summary(f"{mode} join", join_ms[mode]))
    held, free = walls["held"], walls["free"]
    print(
        f"  held/free: median {statistics.median(held) / statistics.median(free):.3f}, "
        f"p95 {_quantile(held, 0.95) / _quantile(free, 0.95):.3f}"
    )
    if contaminated:
        print(f"  warning: another holder was seen in {contaminated} free blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
