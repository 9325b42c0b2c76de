"""``python -m bench.floor``: the kernel's own cost of a container's namespaces.

clone(2) of a child that calls _exit(0) at once, then waitid(2) on its pidfd,
from this (small, single-threaded) Python process through ``runtime.libc``,
the launcher's own clone: with no namespace, each of the five alone, and all
five.  Prints the median of clone alone and of clone + exit + reap, in ms;
the difference to "none" is what a namespace costs the kernel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from runtime import libc
from runtime.namespaces import DEFAULT_NAMESPACES, Namespace, clone_flags


def measure(flags: int, runs: int) -> tuple[float, float]:
    clone_ms, total_ms = [], []
    for _ in range(runs):
        start = time.perf_counter()
        pid, pidfd = libc.clone(lambda: os._exit(0), flags)
        cloned = time.perf_counter()
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        done = time.perf_counter()
        os.close(pidfd)
        clone_ms.append((cloned - start) * 1e3)
        total_ms.append((done - start) * 1e3)
    return statistics.median(clone_ms), statistics.median(total_ms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("--runs", type=int, default=300)
    args = p.parse_args(argv)
    cases = [("none", Namespace(0))]
    cases += [(ns.name or "?", ns) for ns in Namespace if ns & DEFAULT_NAMESPACES]
    cases.append(("all five", DEFAULT_NAMESPACES))
    print(f"{'namespaces':12} {'clone':>8} {'+exit+reap':>11}  (median ms, {args.runs} runs)")
    for name, namespaces in cases:
        clone_ms, total_ms = measure(clone_flags(namespaces), args.runs)
        print(f"{name:12} {clone_ms:8.3f} {total_ms:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
