"""``python -m bench.timeline``: when the launcher and the child reach each point of a launch.

``bench.steps`` says how long each step takes; this says what waits for
what.  A launcher runs with hooks that stamp ``time.monotonic()`` (one
clock for every process) into a shared memory file at fixed points: the
clone in the launcher, the child's first Python line, its wait for the go
byte, its first step, its wait for the cgroup join, the moment before
execve, and the launcher's ``Cgroup.add``, the end of ``Spawner.join`` and
``Spawner.release``.  The runtime drives it in-process (``Runtime.create`` +
``wait`` of ``/bin/true``), and each mark is printed as ms after the clone
call: median, mean and p90 over the launches, sorted by median, with the
wall time of a launch and the duration of ``Cgroup.add`` alone.
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLOTS = 1024
MARKS = {
    1: "clone returned (launcher)",
    2: "child runs Python",
    3: "child waits for the go byte",
    4: "child got the go byte",
    5: "child's first step",
    6: "child waits for the cgroup join",
    7: "child got the joined byte",
    8: "child calls execve",
    9: "Cgroup.add begins (launcher)",
    10: "Cgroup.add ends (launcher)",
    11: "Spawner.join ends (launcher)",
    12: "Spawner.release: joined byte sent (launcher)",
    13: "go byte sent (launcher)",
}
#: Per-launch spans between two marks (median of the differences, which
#: pairs them launch by launch rather than subtracting two medians).
SPANS = (
    (0, 1, "clone(2) in the launcher"),
    (1, 13, "launcher: clone returned -> go byte sent"),
    (2, 3, "child: Python -> waits for the go byte"),
    (13, 4, "go byte: sent -> received"),
    (5, 6, "child: first step -> waits for the cgroup join"),
    (13, 11, "launcher: go byte sent -> Spawner.join ends"),
    (11, 12, "launcher: Spawner.join ends -> joined byte sent"),
    (7, 8, "child: joined byte -> execve"),
)
RECORD = 8 * (max(MARKS) + 1)  # slot 0: just before the clone call
WARMUP = 5


def timed_launcher(argv: list[str]) -> int:
    """The launcher, with the marks (runs as ``python -m bench.timeline --launcher``)."""
    from runtime import child, libc
    from runtime.cgroups.base import Cgroup
    from runtime.launcher import spawn, startup

    shm_path, launcher_args = argv[0], argv[1:]
    fd = os.open(shm_path, os.O_RDWR)
    shm = mmap.mmap(fd, SLOTS * RECORD, flags=mmap.MAP_SHARED)
    clones = [0]

    def mark(index: int) -> None:
        # The child inherits the launcher's count: its slot is the launch's.
        slot = (clones[0] - 1) % SLOTS
        struct.pack_into("d", shm, slot * RECORD + 8 * index, time.monotonic())

    def around(before: int | None, after: int | None, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            if before is not None:
                mark(before)
            result = fn(*args, **kwargs)
            if after is not None:
                mark(after)
            return result

        return run

    real_clone = libc.clone

    def clone(*args: Any, **kwargs: Any) -> Any:
        clones[0] += 1
        mark(0)
        result = real_clone(*args, **kwargs)
        mark(1)
        return result

    spawn.libc.clone = clone  # type: ignore[attr-defined]
    child.run = around(2, None, child.run)  # type: ignore[assignment]
    child._wait_for_go = around(3, 4, child._wait_for_go)  # type: ignore[assignment]
    child.wait_for_joined = around(6, 7, child.wait_for_joined)  # type: ignore[assignment]
    real_run_steps = child.run_steps

    def run_steps(steps: list[tuple[str, Callable[[], None]]], *args: Any, **kw: Any) -> Any:
        mark(5)
        return real_run_steps([*steps, ("mark execve", lambda: mark(8))], *args, **kw)

    child.run_steps = run_steps  # type: ignore[assignment]
    Cgroup.add = around(9, 10, Cgroup.add)  # type: ignore[method-assign]
    spawn.Spawner.join = around(None, 11, spawn.Spawner.join)  # type: ignore[method-assign]
    spawn.Spawner.release = around(None, 12, spawn.Spawner.release)  # type: ignore[method-assign]
    # The start time is the launcher's first read after it wrote the go byte.
    spawn.process_start_time = around(13, None, spawn.process_start_time)  # type: ignore[attr-defined]
    return startup.main(launcher_args)


def _quantile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timeline")
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's default)")
    args = p.parse_args(argv)
    from runtime import Runtime
    from runtime.spec import CreateRequest

    work = Path(tempfile.mkdtemp(prefix="mydocker-timeline-", dir="/var/tmp"))
    state = work / "state"
    state.mkdir()
    shm_path = f"/dev/shm/mydocker-timeline-{os.getpid()}"
    with open(shm_path, "wb") as f:
        f.truncate(SLOTS * RECORD)
    root = Path(__file__).resolve().parents[1]
    with open(work / "launcher.log", "wb") as log:
        launcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.timeline",
                "--launcher",
                shm_path,
                "--state-dir",
                str(state),
            ],
            cwd=root,
            stderr=log,
        )
    walls: list[float] = []
    runtime = None
    try:
        deadline = time.monotonic() + 20
        while not (state / "launcher.sock").exists():
            if time.monotonic() > deadline or launcher.poll() is not None:
                raise SystemExit(f"the launcher did not come up: {work / 'launcher.log'}")
            time.sleep(0.05)
        runtime = Runtime.open(str(state))
        runtime.start()
        request = CreateRequest(("/bin/true",), image=args.image)
        for i in range(WARMUP + min(args.runs, SLOTS - WARMUP)):
            start = time.perf_counter()
            record = runtime.wait(runtime.create(request).id)
            if i >= WARMUP:
                walls.append((time.perf_counter() - start) * 1e3)
            if record.exit_code != 0:
                raise SystemExit(f"launch failed: {record}")
        with open(shm_path, "rb") as f:
            data = f.read()
    finally:
        if runtime is not None:
            runtime.close()
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(10)
        os.unlink(shm_path)
        from bench.service import kill_leftovers  # the run tmpfs, the cgroups

        kill_leftovers(state)
        shutil.rmtree(work, ignore_errors=True)
    marks: dict[int, list[float]] = {index: [] for index in MARKS}
    spans: dict[int, list[float]] = {index: [] for index in range(len(SPANS))}
    for slot in range(WARMUP, WARMUP + len(walls)):
        stamps = struct.unpack_from(f"{RECORD // 8}d", data, slot * RECORD)
        for index in MARKS:
            if stamps[index]:
                marks[index].append((stamps[index] - stamps[0]) * 1e3)
        for index, (first, second, _) in enumerate(SPANS):
            if stamps[first] and stamps[second]:
                spans[index].append((stamps[second] - stamps[first]) * 1e3)
    print(
        f"{len(walls)} launches of /bin/true ({args.image or 'default image'}), in-process: "
        f"median {statistics.median(walls):.2f} ms, mean {statistics.mean(walls):.2f}, "
        f"p90 {_quantile(walls, 0.9):.2f}"
    )
    print("\n ms after the clone call:\n   median     mean      p90")
    for index, values in sorted(marks.items(), key=lambda kv: statistics.median(kv[1] or [0])):
        if values:
            print(
                f"  {statistics.median(values):7.3f}  {statistics.mean(values):7.3f}  "
                f"{_quantile(values, 0.9):7.3f}  {MARKS[index]}"
            )
    print("\n spans, per launch:\n   median     mean      p90")
    for index, values in spans.items():
        if values:
            print(
                f"  {statistics.median(values):7.3f}  {statistics.mean(values):7.3f}  "
                f"{_quantile(values, 0.9):7.3f}  {SPANS[index][2]}"
            )
    adds = [end - begin for begin, end in zip(marks[9], marks[10], strict=False)]
    if adds:
        print(
            f"\n Cgroup.add alone: median {statistics.median(adds):.3f} ms, "
            f"mean {statistics.mean(adds):.3f}, p90 {_quantile(adds, 0.9):.3f}"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--launcher":
        sys.exit(timed_launcher(sys.argv[2:]))
    sys.exit(main())
