"""``python -m bench.profile``: where a launch's time goes, with py-spy.

Starts a service, sends sequential ``POST /containers?wait=true`` of
/bin/true for a while, and samples the API process and the launcher with
``py-spy record --format raw --nonblocking --gil`` (the thread running
Python: where the CPU goes; ``--idle`` samples every thread, for wall time).  Prints
each process's top frames by inclusive share of samples and keeps the
collapsed stacks in bench/results/ (flamegraph.pl or speedscope read them).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.service import QUIET, ROOT, Service


def top_frames(collapsed: Path, limit: int) -> list[tuple[float, str]]:
    """Inclusive share of samples per function, over all threads' stacks."""
    total = 0
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + frame.split("/")[-1].split(":")[0].rstrip(")")
            if name not in seen:
                seen.add(name)
                counts[name] += int(n)
    return [(100 * c / total, name) for name, c in counts.most_common(limit)] if total else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--idle", action="store_true", help="count time blocked too (wall, not CPU)")
    p.add_argument("--output-dir", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(pyspy, os.X_OK):
        sys.exit("bench.profile needs py-spy: bench/run installs it (pip install -e '.[bench]')")
    work = Path(tempfile.mkdtemp(prefix="mydocker-profile-", dir="/var/tmp"))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    service = Service(work / "state", extra_args=QUIET)
    service.start()
    try:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            client.post("/containers", params={"wait": "true"}, json={"command": ["/bin/true"]})
            launcher = service.launcher_pid()
            targets = {"api": service.pid, "launcher": launcher}
            spies = {
                who: subprocess.Popen(
                    [
                        pyspy,
                        "record",
                        "--pid",
                        str(pid),
                        "--format",
                        "raw",
                        "--nonblocking",
                        # --gil: only the thread running Python (on-CPU work);
                        # --idle: every thread, blocked or not (wall time).
                        "--idle" if args.idle else "--gil",
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(int(args.seconds)),
                        "--output",
                        str(out / f"profile-{stamp}-{who}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for who, pid in targets.items()
                if pid
            }
            time.sleep(1.0)  # py-spy attaches
            launches = 0
            deadline = time.monotonic() + args.seconds - 1.5
            while time.monotonic() < deadline:
                client.post("/containers", params={"wait": "true"}, json={"command": ["/bin/true"]})
                launches += 1
            for spy in spies.values():
                spy.wait(60)
    finally:
        service.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{launches} launches")
    for who in spies:
        path = out / f"profile-{stamp}-{who}.txt"
        print(f"\n{who}: {path}")
        for share, name in top_frames(path, args.top):
            print(f"  {share:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
