"""``python -m bench.launchfiles``: one launch's file-system work, as it was
and as it is, on the state dir's file system (docs/performance.md, "A
launch's files").

Each round does, in a shuffled order, what a launch and its removal did to
the file system before issue 17's file round and what they do now, and
times each part (no process is started: the files only):

    before  the API: mkdir of the container's dir, ``layer`` and
            ``layer/root``; the launcher: two O_CREAT opens of the logs, a
            pid file written into the container's dir; the removal: rmtree
    now     the API: a spare renamed into place and a stat of the shared
            mount point; the launcher: the logs opened (they exist), the pid
            file written on a tmpfs and unlinked at the reap; the removal:
            rmtree; off the way: the next spare made (timed apart)

Needs root (it mounts a tmpfs for the pid files).  ``--dir`` must be on the
file system the state dir would be on (default /var/tmp).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from runtime import libc, pids, rundir
from runtime.sparedirs import SpareDirs

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def _open_logs(cdir: str) -> None:
    for stream in ("stdout", "stderr"):
        os.close(os.open(os.path.join(cdir, f"{stream}.log"), LOG_FLAGS, 0o640))


def _timed(parts: dict[str, list[float]], name: str, action: Callable[[], object]) -> None:
    start = time.perf_counter()
    action()
    parts[name].append((time.perf_counter() - start) * 1e6)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.launchfiles")
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="mydocker-launchfiles-", dir=args.dir)
    containers, run = os.path.join(work, "containers"), os.path.join(work, "run")
    os.mkdir(containers)
    rundir.ensure(run)
    shared = os.path.join(work, "layer", "root")
    os.makedirs(shared)
    spares = SpareDirs(os.path.join(work, "spares"))
    spares.make_one()
    names = ("before: create", "before: remove", "now: create", "now: remove", "now: spare")
    parts: dict[str, list[float]] = {name: [] for name in names}
    try:
        for _ in range(args.rounds):
            for arm in random.sample(["before", "now"], 2):
                cdir = os.path.join(containers, secrets.token_hex(32))
                if arm == "before":

                    def create(cdir: str = cdir) -> None:
                        os.mkdir(cdir, 0o700)
                        os.makedirs(os.path.join(cdir, "layer", "root"), 0o700)
                        _open_logs(cdir)
                        with open(os.path.join(cdir, "pid"), "w", encoding="ascii") as f:
                            f.write("12345 678901\n")

                else:
                    pidfile = os.path.join(run, os.path.basename(cdir) + ".pid")

                    def create(cdir: str = cdir, pidfile: str = pidfile) -> None:
                        if not spares.take(cdir):
                            os.mkdir(cdir, 0o700)
                        os.path.isdir(shared)
                        _open_logs(cdir)
                        pids.write_pidfile(pidfile, 12345, 678901)
                        pids.remove_pidfile(pidfile)

                    _timed(parts, "now: spare", spares.make_one)
                _timed(parts, f"{arm}: create", create)
                _timed(parts, f"{arm}: remove", lambda cdir=cdir: shutil.rmtree(cdir))
    finally:
        libc.umount2(run, libc.MNT_DETACH)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.rounds} rounds on {args.dir}, interleaved; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    for name in names:
        values = sorted(parts[name])
        print(
            f"  {name:15s} median {statistics.median(values):7.1f} us  "
            f"mean {statistics.mean(values):7.1f}  p90 {values[int(len(values) * 0.9)]:7.1f}"
        )
    for what in ("create", "remove"):
        ratio = statistics.median(parts[f"now: {what}"]) / statistics.median(
            parts[f"before: {what}"]
        )
        print(f"  now / before, {what}: {ratio:.3f} (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
