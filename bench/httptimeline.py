"""``python -m bench.httptimeline``: a pooled launch over HTTP, stage by stage.

``bench.timeline`` follows a cold launch in-process; this follows the
default service's launch (warm pool on) from the client's send of ``POST
/containers?wait=true`` to its receipt of the answer.  The API and the
launcher run with bench/marks.py's hooks (the launcher started first, so
that the API connects to it), and every process stamps the same monotonic
clock into one shared file: the API (request parsed, handler entered, the
worker thread's ``begin_create``, record inserted, request sent, the reader
thread's reply and exit, the loop resuming, the response's sends), the
launcher (received, child taken, cgroups adopted, stdio, cgroups renamed,
pid file, spec sent, execve seen, reply sent, reaped, exit event sent) and the child
(claim received, execve).  A mark belongs to the launch whose client
window holds it (launches go one at a time, ``--gap`` apart so that the
pool refills between them).

Prints, over the pooled launches (a pool miss, counted, is left out; with
``--pool-size 0`` over the cold ones):
each mark's offset from the client's send (median, p90), the critical
path's stages and the reply's side branch (median, p90 of each launch's
difference, and the CPU of the stage where both ends are on one thread),
and the CPU per launch of the API, the launcher and the containers.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import marks as m
from bench.service import QUIET, ROOT, Service, cpu_seconds, kill_leftovers

WARMUP = 10
#: The critical path of a ``wait=true`` launch, mark to mark.
API_IN, EXIT_OUT = (0, 1, 2, 3, 9, 4, 5, 28, 29, 10), (18, 19, 22, 30, 31, 32, 33, 34, 35, 36, 40)
CHAIN = (*API_IN, 11, 12, 13, 37, 14, 15, 20, 21, *EXIT_OUT)
#: The same for a cold launch (``--pool-size 0``): the clone, the child's
#: cgroup join (the launcher's) while it builds its root, the release.
COLD_CHAIN = (*API_IN, 23, 24, 25, 21, *EXIT_OUT)
#: Beside it: the worker thread's return, and the launch's reply (recorded
#: "running" while the command runs and exits).
BRANCHES = ((5, 6), (21, 16), (16, 17), (17, 7), (7, 8))
#: The path's parts, for a summary: (first mark, last mark, what).
_IN = ((0, 5, "HTTP in, API: parse, validate, plan, record, send"),)
POOLED_PARTS = (
    *_IN,
    (5, 15, "launcher: receive, claim a pooled child, send its spec"),
    (15, 21, "child: the spec's steps to execve"),
)
COLD_PARTS = (
    *_IN,
    (5, 23, "launcher: receive, decode, clone (cold)"),
    (23, 21, "child: all its steps to execve (cold)"),
)
_OUT = (
    (21, 19, "exec /bin/true, its exit, the reap"),
    (19, 33, "exit event to the API, recorded, the handler resumed"),
    (33, 40, "API: the reply built and sent, HTTP out"),
)
POOLED_PARTS += _OUT
COLD_PARTS += _OUT


def _quantile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


class Client:
    """One kept-alive connection, blocking: the least CPU a client can take."""

    def __init__(self, port: int, image: str | None) -> None:
        body = json.dumps({"command": ["/bin/true"], **({"image": image} if image else {})})
        self.request = (
            f"POST /containers?wait=true HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def launch(self) -> tuple[int, int]:
        """The monotonic ns of the send and of the answer's last byte."""
        sent = time.monotonic_ns()
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self._recv()
        received = time.monotonic_ns()
        if not head.startswith(b"HTTP/1.1 201") or b'"exit_code":0' not in body:
            raise SystemExit(f"httptimeline: launch failed: {head[:40]!r} {body[:300]!r}")
        return sent, received

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("httptimeline: the service closed the connection")
        return chunk


def _launcher(state: Path, board: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "bench.marks", "--launcher", "--state-dir", str(state)],
            cwd=ROOT,
            stderr=out,
            env={**os.environ, m.ENV: board},
            start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while not (state / "launcher.sock").exists():
        if time.monotonic() > deadline or launcher.poll() is not None:
            raise SystemExit(f"httptimeline: the launcher did not come up: {log}")
        time.sleep(0.05)
    return launcher


def run(
    runs: int, image: str | None, gap: float, pool_args: list[str]
) -> tuple[list[dict[int, m.Mark]], dict[str, float]]:
    """The launches' marks, one dict each, and the CPU per launch (ms)."""
    work = Path(tempfile.mkdtemp(prefix="mydocker-httptimeline-", dir="/var/tmp"))
    state = work / "state"
    state.mkdir()
    board = f"/dev/shm/mydocker-httptimeline-{os.getpid()}"
    m.Board.create(board)
    service = Service(
        state, extra_args=[*QUIET, *pool_args], env={m.ENV: board}, module="bench.marks"
    )
    launcher = None
    windows: list[tuple[int, int]] = []
    try:
        launcher = _launcher(state, board, work / "launcher.log")
        service.start()
        time.sleep(1.0)  # the pool's first fills
        if launcher.poll() is not None:  # the API would have started one without marks
            raise SystemExit(f"httptimeline: the launcher exited: {work / 'launcher.log'}")
        client = Client(service.port, image)
        for _ in range(WARMUP):
            client.launch()
            time.sleep(gap)
        before = {"api": cpu_seconds(service.pid), "launcher": cpu_seconds(launcher.pid)}
        for _ in range(runs):
            windows.append(client.launch())
            time.sleep(gap)
        after = {"api": cpu_seconds(service.pid), "launcher": cpu_seconds(launcher.pid)}
        client.sock.close()
        found = m.read(board)
    finally:
        service.stop()
        if launcher is not None:
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(15)
        kill_leftovers(state)
        os.unlink(board)
        shutil.rmtree(work, ignore_errors=True)
    cpu = {}
    for name in before:
        b, a = before[name], after[name]
        if a is not None and b is not None:
            cpu[name] = (a["self"] - b["self"]) / runs * 1e3
            if name == "launcher":  # its reaped children: the containers, fills included
                cpu["containers"] = (a["children"] - b["children"]) / runs * 1e3
    return _per_launch(found, windows), cpu


def _per_launch(found: list[m.Mark], windows: list[tuple[int, int]]) -> list[dict[int, m.Mark]]:
    """Each launch's marks (the first of each in its window), the client's included."""
    starts = [sent for sent, _ in windows]
    launches = [
        {
            m.CLIENT_SENT: m.Mark(m.CLIENT_SENT, sent, 0, ("client", 0)),
            m.CLIENT_RECEIVED: m.Mark(m.CLIENT_RECEIVED, received, 0, ("client", 0)),
        }
        for sent, received in windows
    ]
    for mark in found:
        i = bisect.bisect_right(starts, mark.ns) - 1
        if i < 0 or mark.ns > windows[i][1] or mark.mark in (m.CLIENT_SENT, m.CLIENT_RECEIVED):
            continue
        known = launches[i].get(mark.mark)
        if known is None or mark.ns < known.ns:
            launches[i][mark.mark] = mark
    return launches


def _span(launches: list[dict[int, m.Mark]], a: int, b: int) -> tuple[list[float], list[float]]:
    """Each launch's ``b - a`` in ms, and the CPU between them where one thread took both."""
    walls, cpus = [], []
    for launch in launches:
        if a in launch and b in launch:
            walls.append((launch[b].ns - launch[a].ns) / 1e6)
            if launch[a].thread == launch[b].thread and launch[a].thread[0] != "client":
                cpus.append((launch[b].cpu_ns - launch[a].cpu_ns) / 1e6)
    return walls, cpus


def _row(walls: list[float], cpus: list[float], what: str) -> str:
    cpu = f"{statistics.median(cpus):7.3f}" if cpus and len(cpus) * 2 >= len(walls) else "      -"
    return f"  {statistics.median(walls):7.3f}  {_quantile(walls, 0.9):7.3f}  {cpu}  {what}"


def report(launches: list[dict[int, m.Mark]], cpu: dict[str, float], image: str | None) -> None:
    pooled = [launch for launch in launches if m.TAKEN in launch]
    colds = [launch for launch in launches if m.COLD_CLONE in launch]
    fills = sum(m.FILL in launch for launch in launches)
    # Without a pool (--pool-size 0), the cold launches.
    shown, chain, parts, kind = (pooled, CHAIN, POOLED_PARTS, "pooled")
    if not pooled:
        shown, chain, parts, kind = (colds, COLD_CHAIN, COLD_PARTS, "cold")
    if not shown:
        raise SystemExit("httptimeline: no launch was marked")
    left = f"{len(colds)} cold (left out)" if pooled else f"{len(colds)} cold"
    walls, _ = _span(shown, m.CLIENT_SENT, m.CLIENT_RECEIVED)
    print(
        f"{len(launches)} launches of /bin/true over HTTP ({image or 'default image'}, "
        f"POST /containers?wait=true): {len(pooled)} pooled, {left}, "
        f"a pool fill inside {fills}; load average {os.getloadavg()[0]:.2f}\n"
        f"{kind}: median {statistics.median(walls):.2f} ms, mean {statistics.mean(walls):.2f}, "
        f"p90 {_quantile(walls, 0.9):.2f} (the client's send to its receipt)"
    )
    print("\n ms after the client's send:\n   median      p90      n")
    offsets = []
    for mark in m.MARKS:
        values, _ = _span(shown, m.CLIENT_SENT, mark)
        if values:
            offsets.append((statistics.median(values), _quantile(values, 0.9), len(values), mark))
    for median, p90, count, mark in sorted(offsets):
        print(f"  {median:7.3f}  {p90:7.3f}  {count:5d}  {m.MARKS[mark]}")
    print("\n the critical path, per launch:\n   median      p90      CPU  (ms; CPU: one thread)")
    for a, b in zip(chain, chain[1:], strict=False):
        walls, cpus = _span(shown, a, b)
        if walls:
            print(_row(walls, cpus, f"-> {m.MARKS[b]}"))
    print("\n beside it:")
    for a, b in BRANCHES:
        walls, cpus = _span(shown, a, b)
        if walls:
            print(_row(walls, cpus, f"{m.MARKS[a]} -> {m.MARKS[b]}"))
    print("\n parts of the path:")
    for a, b, what in parts:
        walls, cpus = _span(shown, a, b)
        if walls:
            print(_row(walls, cpus, what))
    if cpu:
        print(
            "\n CPU per launch (ms, all launches): "
            + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
            + " (containers: the launcher's reaped children, clock ticks, fills included)"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.httptimeline", description=__doc__)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--image", default=None, help="e.g. busybox (default: the service's default)")
    p.add_argument(
        "--gap", type=float, default=0.05, help="seconds between launches: the pool refills"
    )
    p.add_argument(
        "--pool-size", type=int, default=None, help="the service's --pool-size (its default)"
    )
    args = p.parse_args(argv)
    pool_args = [] if args.pool_size is None else ["--pool-size", str(args.pool_size)]
    launches, cpu = run(args.runs, args.image, args.gap, pool_args)
    report(launches, cpu, args.image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
