"""``python -m bench.nettrace``: where a pooled bridge launch's wall time goes, stamp by stamp.

``bench.network`` says how much a bridge launch adds over ``none``; this
says what the launch waits for.  As ``bench.network`` (as root, a service
in a network namespace of its own, one user network, ``none`` and
``bridge`` launches of ``["true"]`` interleaved over HTTP), but the launcher
and the API process run with hooks that write ``time.monotonic()`` (one
clock for every process) into a shared memory file:

    API       begin, attach done, started done (/etc files, names, event),
              request asked, answer recorded
    launcher  received, /etc trees made, spec handed over, veth plugged,
              joined byte sent, exec'd (the reply), exit reported; and each
              fill (a clone) and park (a veth) of the pool as an interval
    child     (a claimed pooled one, found by its pid) claim received, eth0
              configured, waits for the joined byte, got it, execve

The pool's children are cloned by the launcher, not by its zygote, so
that they inherit the hooks.  The launcher and the API number their
launches in the order they come
(the client sends one at a time), so the nth of each is the same launch.
Prints, per row, the median of each span (launch by launch), how often the
child waited for the joined byte, and how many launches a fill or a park
overlapped (between the request's arrival and the exit's report).
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import marks

SLOTS = 2048
FIELDS = 16
RECORD = 8 * FIELDS
#: Regions of the shared file: the API's launches, the launcher's, the
#: children's (by pid), the pool's intervals.
API, LAUNCHER, CHILD, POOL = (0, 1, 2, 3)
CHILD_SLOTS = 1 << 16
SIZES = (SLOTS, SLOTS, CHILD_SLOTS, SLOTS)
OFFSETS = [sum(SIZES[:i]) * RECORD for i in range(len(SIZES))]
TOTAL = sum(SIZES) * RECORD

A_BEGIN, A_ATTACHED, A_STARTED, A_ASKED, A_ANSWERED = range(1, 6)
L_RECEIVED, L_TREES, L_HANDED, L_PLUGGED, L_JOINED, L_EXECD, L_EXIT, L_ADOPTED = range(2, 10)
C_CLAIM, C_ETH0, C_WAIT, C_GOT, C_EXECVE, C_STEPS, C_TREES, C_MOUNTED = range(1, 9)
FILL, PARK, SPARE = 1.0, 2.0, 3.0


class Shm:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        self.map = mmap.mmap(fd, TOTAL, flags=mmap.MAP_SHARED)
        os.close(fd)
        self.count = [0, 0, 0, 0]

    def put(self, region: int, slot: int, index: int, value: float) -> None:
        struct.pack_into(
            "d", self.map, OFFSETS[region] + (slot % SIZES[region]) * RECORD + 8 * index, value
        )

    def next(self, region: int) -> int:
        self.count[region] += 1
        return self.count[region] - 1


def _after(
    fn: Callable[..., Any], then: Callable[[Any, tuple[Any, ...]], None]
) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        then(result, args)
        return result

    return run


def _before(fn: Callable[..., Any], first: Callable[[tuple[Any, ...]], None]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        first(args)
        return fn(*args, **kwargs)

    return run


def hooked_launcher(shm_path: str, argv: list[str]) -> int:
    from runtime import child, pooled
    from runtime.launcher import claim, server, spawn, startup
    from runtime.launcher.pool import Pool

    shm = Shm(shm_path)
    now = time.monotonic
    marks.without_zygote()
    by_pid: dict[int, int] = {}
    current = [-1]

    def launch_mark(index: int, slot: int | None = None) -> None:
        shm.put(LAUNCHER, current[0] if slot is None else slot, index, now())

    def received(args: tuple[Any, ...]) -> None:
        current[0] = shm.next(LAUNCHER)
        launch_mark(L_RECEIVED)

    # A pooled child sees itself as pid 1 (its own pid namespace): it finds
    # its record by its fill's number, which it inherits from the clone.
    fill_no = [0]
    fill_of: dict[int, int] = {}

    def cloned(entry: Any, args: tuple[Any, ...]) -> None:
        by_pid[entry.process.pid] = current[0]
        shm.put(LAUNCHER, current[0], 1, float(fill_of.pop(entry.process.pid, 0)))

    real_clone = Pool._clone

    def pool_clone(self: Any, template: Any) -> None:
        fill_no[0] += 1
        real_clone(self, template)
        fill_of[self.children[-1].pid] = fill_no[0]

    Pool._clone = pool_clone  # type: ignore[method-assign]

    spawn.Spawner.clone = _after(_before(spawn.Spawner.clone, received), cloned)  # type: ignore[method-assign]
    pooled.etc_trees = _after(pooled.etc_trees, lambda r, a: launch_mark(L_TREES))  # type: ignore[assignment]
    claim.hand_over = _after(claim.hand_over, lambda r, a: launch_mark(L_HANDED))  # type: ignore[assignment]
    claim.plug = _after(claim.plug, lambda r, a: launch_mark(L_PLUGGED))  # type: ignore[assignment]
    from runtime.network import netlink

    netlink.adopt_veth = _after(netlink.adopt_veth, lambda r, a: launch_mark(L_ADOPTED))  # type: ignore[assignment]

    def slot_of(entry: Any) -> int | None:
        return by_pid.get(entry.process.pid)

    def entry_mark(index: int) -> Callable[[Any, tuple[Any, ...]], None]:
        def mark(result: Any, args: tuple[Any, ...]) -> None:
            slot = slot_of(args[1])
            if slot is not None:
                launch_mark(index, slot)

        return mark

    spawn.Spawner.release = _after(spawn.Spawner.release, entry_mark(L_JOINED))  # type: ignore[method-assign]
    spawn.Spawner.read_error_pipe = _after(spawn.Spawner.read_error_pipe, entry_mark(L_EXECD))  # type: ignore[method-assign]
    server.Launcher.reap = _after(server.Launcher.reap, entry_mark(L_EXIT))  # type: ignore[method-assign]

    def interval(kind: float, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            slot = shm.next(POOL)
            shm.put(POOL, slot, 0, kind)
            shm.put(POOL, slot, 1, now())
            try:
                return fn(*args, **kwargs)
            finally:
                shm.put(POOL, slot, 2, now())

        return run

    Pool.fill_one = interval(FILL, Pool.fill_one)  # type: ignore[method-assign]
    Pool._park = interval(PARK, Pool._park)  # type: ignore[method-assign]
    spawn.SpareNet.make = interval(SPARE, spawn.SpareNet.make)  # type: ignore[attr-defined]

    def child_mark(index: int) -> None:
        shm.put(CHILD, fill_no[0], index, now())

    def got_claim(result: Any, args: tuple[Any, ...]) -> None:
        shm.put(CHILD, fill_no[0], 0, float(fill_no[0]))
        child_mark(C_CLAIM)

    pooled.receive = _after(pooled.receive, got_claim)  # type: ignore[assignment]
    if hasattr(pooled, "configure_eth0"):  # a tree where the child configures its eth0
        pooled.configure_eth0 = _after(pooled.configure_eth0, lambda r, a: child_mark(C_ETH0))
    waiting = child.wait_for_joined
    child.wait_for_joined = _after(  # type: ignore[assignment]
        _before(waiting, lambda a: child_mark(C_WAIT)), lambda r, a: child_mark(C_GOT)
    )
    real_run_steps = child.run_steps

    after = {"receive the /etc trees": C_TREES, "mount /etc/hostname": C_MOUNTED}

    def marked(name: str, step: Callable[[], None]) -> Callable[[], None]:
        if name not in after:
            return step
        return _after(step, lambda r, a: child_mark(after[name]))

    def run_steps(steps: list[tuple[str, Callable[[], None]]], *args: Any, **kw: Any) -> Any:
        child_mark(C_STEPS)
        steps = [(name, marked(name, step)) for name, step in steps]
        return real_run_steps([*steps, ("mark execve", lambda: child_mark(C_EXECVE))], *args, **kw)

    child.run_steps = run_steps  # type: ignore[assignment]
    return startup.main(argv)


def hooked_api(shm_path: str, argv: list[str]) -> int:
    from app.__main__ import main as app_main
    from runtime import launches, networks

    shm = Shm(shm_path)
    current = [-1]

    def mark(index: int) -> Callable[..., None]:
        def put(*_: Any) -> None:
            shm.put(API, current[0], index, time.monotonic())

        return put

    def begin(args: tuple[Any, ...]) -> None:
        current[0] = shm.next(API)
        mark(A_BEGIN)()

    launches.Launches.begin = _before(launches.Launches.begin, begin)  # type: ignore[method-assign]
    networks.Networks.attach = _after(networks.Networks.attach, mark(A_ATTACHED))  # type: ignore[method-assign]
    networks.Networks.started = _after(networks.Networks.started, mark(A_STARTED))  # type: ignore[method-assign]
    launches.Asker.ask = _before(launches.Asker.ask, mark(A_ASKED))  # type: ignore[attr-defined]
    launches.Launches.answer = _after(launches.Launches.answer, mark(A_ANSWERED))  # type: ignore[method-assign]
    return app_main(argv)


def _span(values: list[float]) -> str:
    if not values:
        return "      -"
    return f"{statistics.median(values) * 1000:7.3f}"


def report(data: bytes, rows: list[str], warmup: int) -> None:
    def rec(region: int, slot: int) -> tuple[float, ...]:
        return struct.unpack_from(f"{FIELDS}d", data, OFFSETS[region] + slot * RECORD)

    fills = [rec(POOL, i) for i in range(SLOTS) if rec(POOL, i)[0]]
    spans: dict[str, dict[str, list[float]]] = {}
    for n, row in enumerate(rows):
        if n < warmup:
            continue
        a, lau = rec(API, n), rec(LAUNCHER, n)
        filled = int(lau[1])
        c = rec(CHILD, filled % CHILD_SLOTS) if filled else (0.0,) * FIELDS
        if int(c[0]) != filled:
            c = (0.0,) * FIELDS
        s = spans.setdefault(row, {})

        def add(name: str, first: float, second: float, s: dict[str, list[float]] = s) -> None:
            if first and second:
                s.setdefault(name, []).append(second - first)

        add("API begin -> attach done", a[A_BEGIN], a[A_ATTACHED])
        add("attach done -> started done (/etc, names)", a[A_ATTACHED], a[A_STARTED])
        add("started done -> asked", a[A_STARTED], a[A_ASKED])
        add("API begin -> asked", a[A_BEGIN], a[A_ASKED])
        add("asked -> launcher received", a[A_ASKED], lau[L_RECEIVED])
        add("handed over -> /etc trees made", lau[L_HANDED], lau[L_TREES])
        add("received -> spec handed over", lau[L_RECEIVED], lau[L_HANDED])
        add("handed over -> host end adopted", lau[L_HANDED], lau[L_ADOPTED])
        add("adopted -> eth0 configured (plugged)", lau[L_ADOPTED], lau[L_PLUGGED])
        add("handed over -> plugged", lau[L_HANDED], lau[L_PLUGGED])
        add("handed over -> joined sent", lau[L_HANDED], lau[L_JOINED])
        add("child: handed over -> claim received", lau[L_HANDED], c[C_CLAIM])
        add("child: claim -> eth0 configured", c[C_CLAIM], c[C_ETH0])
        add("child: claim -> first step", c[C_CLAIM], c[C_STEPS])
        add("child: first step -> /etc trees received", c[C_STEPS], c[C_TREES])
        add("child: trees -> mounted", c[C_TREES], c[C_MOUNTED])
        add("child: claim -> waits for joined", c[C_CLAIM], c[C_WAIT])
        add("child: claim -> execve", c[C_CLAIM], c[C_EXECVE])
        add("child: waited for joined", c[C_WAIT], c[C_GOT])
        add("child: joined -> execve", c[C_GOT], c[C_EXECVE])
        add("joined sent -> exec'd (launcher)", lau[L_JOINED], lau[L_EXECD])
        add("child execve -> exec'd (launcher)", c[C_EXECVE], lau[L_EXECD])
        add("received -> exec'd (launcher)", lau[L_RECEIVED], lau[L_EXECD])
        add("API begin -> exec'd", a[A_BEGIN], lau[L_EXECD])
        add("exec'd -> answer recorded (API)", lau[L_EXECD], a[A_ANSWERED])
        add("exec'd -> exit reported", lau[L_EXECD], lau[L_EXIT])
        add("API begin -> answer recorded", a[A_BEGIN], a[A_ANSWERED])
        start, end = lau[L_RECEIVED], lau[L_EXECD]
        for kind, label in ((FILL, "fills"), (PARK, "parks"), (SPARE, "spare nets")):
            hit = any(f[0] == kind and f[1] < end and f[2] > start for f in fills)
            s.setdefault(f"launches a {label[:-1]} overlapped (received->exec'd)", []).append(
                float(hit) / 1000
            )
    print("  " + "".join(f"{r:>10}" for r in spans) + "   (ms, medians per launch)")
    names = list(dict.fromkeys(k for s in spans.values() for k in s))
    for name in names:
        cells = []
        for row in spans:
            values = spans[row].get(name, [])
            if name.startswith("launches a"):
                cells.append(f"{sum(values) * 1000:>7.0f}/{len(values):<2}")
            else:
                cells.append(f"{_span(values):>10}")
        print("  " + "".join(cells) + f"   {name}")
    for kind, label in ((FILL, "fill"), (PARK, "park")):
        took = [f[2] - f[1] for f in fills if f[0] == kind]
        if took:
            print(f"  {label}: {len(took)}, median {statistics.median(took) * 1000:.3f} ms")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.nettrace")
    p.add_argument("--runs", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--settle", type=float, default=0.2)
    args = p.parse_args(argv)
    from bench.network import netns_service

    shm_path = f"/dev/shm/bench-nettrace-{os.getpid()}"
    with open(shm_path, "wb") as f:
        f.truncate(TOTAL)
    me = ("bench.nettrace",)
    rows: list[str] = []
    try:
        with netns_service(
            "bench-nettrace-", api=(*me, "--api", shm_path), launcher=(*me, "--launcher", shm_path)
        ) as served:
            client = served.client
            client.post("/networks", json={"name": "bench"}).raise_for_status()
            rng = random.Random(7)
            for _ in range(args.warmup + args.runs):
                order = ["none", "bridge"]
                rng.shuffle(order)
                made = []
                for row in order:
                    body: dict[str, Any] = {"command": ["true"]}
                    if row == "bridge":
                        body["network"] = "bench"
                    response = client.post("/containers", json=body)
                    response.raise_for_status()
                    rows.append(row)
                    made.append(response.json()["id"])
                for container_id in made:
                    client.post(f"/containers/{container_id}/wait")
                    client.delete(f"/containers/{container_id}")
                time.sleep(args.settle)
        with open(shm_path, "rb") as f:
            data = f.read()
    finally:
        os.unlink(shm_path)
    with open("/proc/loadavg") as f:
        print(f"{args.runs} rounds, load average {f.read().split()[0]}")
    report(data, rows, 2 * args.warmup)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--launcher":
        sys.exit(hooked_launcher(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) > 2 and sys.argv[1] == "--api":
        sys.exit(hooked_api(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
