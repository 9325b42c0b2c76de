"""``scripts/load`` (``python -m bench.load``): many launches at once, checked for loss.

N containers over HTTP from C concurrent clients; container i runs
``sh -c 'exit K'`` with K = i mod 256, through ``POST /containers?wait=true``.
Then it checks what issue 8 asks of the service under load:

- no lost record: every POST answered 201, and ``GET /containers`` lists
  every container, exited, with the exit code its command chose;
- no zombie: no child of the launcher is left in state Z;
- no leaked fd: the service's open-fd count is back to its baseline (taken
  after a warm-up, with every client connection closed);
- bounded memory: the service's RSS grew by less than ``--rss-bound-mib``.

It starts a service of its own on a temp state dir unless ``--url`` is given
(then ``--pid`` names the service process for the /proc checks).  The test
suite runs a bounded version (tests/e2e/test_load.py); the full run is
``scripts/load`` (5,000 launches at 32 clients).  Exit status 1 when a check
fails; the report is JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.service import QUIET, Service, children_of, find_launcher, proc_status

WARMUP = 50


@dataclass
class Report:
    launches: int
    concurrency: int
    seconds: float = 0.0
    failed_requests: list[str] = field(default_factory=list)
    lost_records: int = 0
    wrong_exit_codes: list[str] = field(default_factory=list)
    zombies: list[int] = field(default_factory=list)
    fds_baseline: int = 0
    fds_after: int = 0
    rss_baseline_kib: int = 0
    rss_after_kib: int = 0
    rss_bound_mib: int = 0
    threads_baseline: int = 0
    threads_after: int = 0

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_after_kib - self.rss_baseline_kib) / 1024

    def problems(self) -> list[str]:
        found = []
        if self.failed_requests:
            found.append(f"{len(self.failed_requests)} requests failed")
        if self.lost_records:
            found.append(f"{self.lost_records} records lost")
        if self.wrong_exit_codes:
            found.append(f"{len(self.wrong_exit_codes)} wrong exit codes")
        if self.zombies:
            found.append(f"zombies left: {self.zombies}")
        if self.fds_after > self.fds_baseline:
            found.append(f"open fds {self.fds_baseline} -> {self.fds_after}")
        if self.rss_growth_mib >= self.rss_bound_mib:
            found.append(f"RSS grew {self.rss_growth_mib:.1f} MiB (bound {self.rss_bound_mib})")
        return found

    def to_json(self) -> str:
        data = asdict(self)
        data["rss_growth_mib"] = round(self.rss_growth_mib, 1)
        data["failed_requests"] = self.failed_requests[:20]
        data["wrong_exit_codes"] = self.wrong_exit_codes[:20]
        data["problems"] = self.problems()
        return json.dumps(data, indent=2)


def _launch_all(
    url: str, first: int, count: int, concurrency: int
) -> tuple[dict[str, int], list[str]]:
    """``{id: expected exit code}`` of the launched containers, and failures."""
    expected: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=120)
            with lock:
                clients.append(client)
        code = i % 256
        try:
            response = client.post(
                "/containers",
                params={"wait": "true"},
                json={"command": ["sh", "-c", f"exit {code}"]},
            )
        except httpx.HTTPError as err:
            with lock:
                failures.append(f"#{i}: {err!r}")
            return
        with lock:
            if response.status_code != 201:
                failures.append(f"#{i}: {response.status_code} {response.text[:200]}")
                return
            body = response.json()
            expected[body["id"]] = code
            if body["exit_code"] != code or body["status"] != "exited":
                failures.append(f"#{i}: answered {body['status']} {body['exit_code']}, not {code}")

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(first, first + count)))
    finally:
        for client in clients:
            client.close()
    return expected, failures


def _settle(measure: Callable[[], int], target: int, seconds: float = 10.0) -> int:
    """``measure()`` once it is down to ``target``, or its value after ``seconds``."""
    deadline = time.monotonic() + seconds
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.1)
        value = measure()
    return value


def zombies_of(pid: int | None) -> list[int]:
    if pid is None:
        return []
    found = []
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data[data.rindex(b")") + 2 :].split()[0] == b"Z":
            found.append(child)
    return found


def run(
    url: str,
    service_pid: int,
    launcher_pid: Callable[[], int | None],
    launches: int,
    concurrency: int,
    rss_bound_mib: int,
) -> Report:
    report = Report(launches=launches, concurrency=concurrency, rss_bound_mib=rss_bound_mib)

    def status() -> dict[str, int]:
        values = proc_status(service_pid)
        if values is None:
            raise RuntimeError(f"the service (pid {service_pid}) is gone")
        return values

    # Warm-up: lazily made things (thread pool, SQLite cache, imports) are
    # part of the baseline, not of the growth.
    warm, failures = _launch_all(url, 0, WARMUP, concurrency)
    report.failed_requests += failures
    time.sleep(1.0)  # the server closes its side of the warm-up connections
    baseline = status()
    report.fds_baseline = baseline["fds"]
    report.rss_baseline_kib = baseline["rss_kib"]
    report.threads_baseline = baseline["threads"]

    started = time.monotonic()
    expected, failures = _launch_all(url, WARMUP, launches, concurrency)
    report.seconds = round(time.monotonic() - started, 2)
    report.failed_requests += failures
    expected.update(warm)

    with httpx.Client(base_url=url, timeout=120) as client:
        listed = {c["id"]: c for c in client.get("/containers").json()}
    for container_id, code in expected.items():
        record = listed.get(container_id)
        if record is None:
            report.lost_records += 1
        elif record["status"] != "exited" or record["exit_code"] != code:
            report.wrong_exit_codes.append(
                f"{container_id[:12]}: {record['status']} {record['exit_code']}, not {code}"
            )
    report.zombies = zombies_of(launcher_pid())
    report.fds_after = _settle(lambda: status()["fds"], report.fds_baseline)
    after = status()
    report.rss_after_kib = after["rss_kib"]
    report.threads_after = after["threads"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/load", description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--launches", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--rss-bound-mib", type=int, default=64)
    parser.add_argument("--url", help="an already running service (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: the service's pid")
    parser.add_argument("--state-dir", help="with --url: its state dir (to find the launcher)")
    args = parser.parse_args(argv)
    service: Service | None = None
    if args.url:
        if args.pid is None:
            parser.error("--url needs --pid")
        url, pid = args.url, args.pid
        state = Path(args.state_dir) if args.state_dir else None
    else:
        work = Path(tempfile.mkdtemp(prefix="mydocker-load-"))
        service = Service(state_dir=work / "state", extra_args=QUIET)
        service.start()
        url, pid, state = service.url, service.pid, service.state_dir
    try:
        report = run(
            url,
            pid,
            lambda: find_launcher(state) if state else None,
            args.launches,
            args.concurrency,
            args.rss_bound_mib,
        )
    finally:
        if service is not None:
            service.close()
    print(report.to_json())
    for problem in report.problems():
        print(f"load: {problem}", file=sys.stderr)
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
