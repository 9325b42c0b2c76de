"""``python -m bench.steps``: where one launch's time goes, step by step.

Runs a launcher with timers around its methods and around each named step
of every child (``runtime.child.run_steps``), drives it with the runtime
in-process (``Runtime.create`` + ``wait`` of /bin/true), and prints:

* each child step's median (the child writes its timings into a shared
  memory file before execve, since after pivot_root it sees no file of ours);
* the launcher's methods by time per launch (cumulative: callers include
  their callees).

It measures with time.perf_counter in the processes themselves, so the
figures include the timers' own small cost; on a loaded machine they
include waiting for a CPU too.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import inspect
import json
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

SLOTS, MAX_STEPS = 1024, 96
RECORD = 8 + 8 * MAX_STEPS


def timed_launcher(argv: list[str]) -> int:
    """The launcher, with timers (runs as ``python -m bench.steps --launcher``)."""
    from runtime import child, libc
    from runtime.launcher import spawn, startup

    shm_path, launcher_args = argv[0], argv[1:]
    fd = os.open(shm_path, os.O_RDWR)
    shm = mmap.mmap(fd, SLOTS * RECORD, flags=mmap.MAP_SHARED)
    clones = [0]
    real_clone = libc.clone

    def clone(*args: Any, **kwargs: Any) -> Any:
        clones[0] += 1  # the child inherits its slot number
        return real_clone(*args, **kwargs)

    spawn.libc.clone = clone  # type: ignore[attr-defined]
    real_run_steps = child.run_steps

    def run_steps(steps: list[tuple[str, Callable[[], None]]], *args: Any, **kw: Any) -> Any:
        slot, spent = (clones[0] - 1) % SLOTS, []

        def timed(action: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                start = time.perf_counter()
                action()
                spent.append(time.perf_counter() - start)

            return run

        def publish() -> None:
            values = spent[:MAX_STEPS]
            base = slot * RECORD
            shm[base : base + 8 + 8 * len(values)] = struct.pack(
                f"d{len(values)}d", len(values), *values
            )

        wrapped = [(name, timed(action)) for name, action in steps]
        return real_run_steps([*wrapped, ("publish timings", publish)], *args, **kw)

    child.run_steps = run_steps  # type: ignore[assignment]
    times: dict[str, list[float]] = collections.defaultdict(list)
    dump = shm_path + ".launcher.json"

    def timer(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                times[name].append(time.perf_counter() - start)
                if name == "Launcher.reap":
                    with open(dump, "w") as f:
                        json.dump(times, f)

        return run

    for module in [m for n, m in list(sys.modules.items()) if n.startswith("runtime.")]:
        for cls_name, cls in list(vars(module).items()):
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                for name, attr in list(vars(cls).items()):
                    if inspect.isfunction(attr) and not name.startswith("__"):
                        setattr(cls, name, timer(f"{cls_name}.{name}", attr))
    return startup.main(launcher_args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.steps")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's default)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--pool-size", type=int, default=0, help="a warm pool: the claimed children's steps"
    )
    args = p.parse_args(argv)
    from runtime import Runtime, child, pooled
    from runtime.spec import CreateRequest

    work = Path(tempfile.mkdtemp(prefix="mydocker-steps-", dir="/var/tmp"))
    state = work / "state"
    state.mkdir()
    shm_path = f"/dev/shm/mydocker-steps-{os.getpid()}"
    with open(shm_path, "wb") as f:
        f.truncate(SLOTS * RECORD)
    root = Path(__file__).resolve().parents[1]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "bench.steps", "--launcher", shm_path, "--state-dir", str(state)],
        cwd=root,
        stderr=open(work / "launcher.log", "wb"),
    )
    deadline = time.monotonic() + 20
    while not (state / "launcher.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    images = ((args.image, args.pool_size),) if args.image else ()  # that image warm too
    runtime = Runtime.open(str(state), pool_size=args.pool_size, pool_images=images)
    runtime.start()
    request = CreateRequest(("/bin/true",), image=args.image)
    warmup = 5
    walls = []
    try:
        for i in range(warmup + args.runs):
            start = time.perf_counter()
            record = runtime.create(request)
            record = runtime.wait(record.id)
            if i >= warmup:
                walls.append(time.perf_counter() - start)
            if record.exit_code != 0:
                raise SystemExit(f"launch failed: {record}")
        spec = record.spec
        # The host image's view comes from the launcher's trees (what
        # runtime/launcher/spawn.py does on a kernel that can hold them).
        view = None
        if spec.rootfs is not None and spec.rootfs.lower is None:
            view = dict.fromkeys(spec.rootfs.binds, -1)
        fds = child.ChildFds(-1, -1, -1, -1, -1, view=view)
        if args.pool_size:  # a pooled child runs only its claim's steps (runtime/pooled.py)
            names = [name for name, _ in pooled.claim_steps(spec, fds, None, started=True)]
        else:
            names = [name for name, _ in child._steps(spec, fds)]
        # A child that joined a network namespace made ahead (sparenet.py)
        # has one step more, first: told apart by its count.
        spared = [name for name, _ in child._steps(spec, dataclasses.replace(fds, netns=0))]
        time.sleep(0.2)
    finally:
        runtime.close()
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(10)
        from bench.service import kill_leftovers  # the run tmpfs, the cgroups

        kill_leftovers(state)
        shutil.rmtree(work, ignore_errors=True)
    per_step: dict[str, list[float]] = {name: [] for name in [*spared[:1], *names]}
    with open(shm_path, "rb") as f:
        data = f.read()
    # Pooled children take their slot at their clone, ahead of their launch:
    # read every slot a child wrote.
    slots = range(SLOTS) if args.pool_size else range(warmup, warmup + args.runs)
    for i in slots:
        base = (i % SLOTS) * RECORD
        count = int(struct.unpack_from("d", data, base)[0])
        if count == 0:
            continue
        these = spared if count == len(spared) and not args.pool_size else names
        for name, value in zip(
            these, struct.unpack_from(f"{count}d", data, base + 8), strict=False
        ):
            per_step[name].append(value * 1e3)
    with open(shm_path + ".launcher.json") as f:
        launcher_times: dict[str, list[float]] = json.load(f)
    os.unlink(shm_path)
    os.unlink(shm_path + ".launcher.json")
    launches = len(launcher_times.get("Launcher.reap", [])) or 1
    print(
        f"{args.runs} launches of /bin/true ({args.image or 'default image'}), in-process: "
        f"median {statistics.median(walls) * 1e3:.2f} ms"
    )
    print("\nchild steps (median ms):")
    total = 0.0
    for name, values in per_step.items():
        if values:
            total += statistics.median(values)
            print(f"  {statistics.median(values):7.3f}  {name}")
    print(f"  {total:7.3f}  sum of the medians")
    print("\nlauncher methods (ms per launch, callers include callees):")
    rows = sorted(((sum(v) * 1e3 / launches, k) for k, v in launcher_times.items()), reverse=True)
    for per_launch, name in rows[: args.top]:
        print(f"  {per_launch:7.3f}  {name}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--launcher":
        sys.exit(timed_launcher(sys.argv[2:]))
    sys.exit(main())
