"""Statistics, the targets of issue 7, the printed table."""

from __future__ import annotations

import math
import statistics
from typing import Any

HOST = "mydocker host"
#: The same launch on a service without a warm pool (every launch cold).
HOST_COLD = "mydocker host cold"
BUSYBOX = "mydocker busybox"
#: The same busybox launch on the service without a warm pool.
BUSYBOX_COLD = "mydocker busybox cold"
LAYERED = "mydocker pulled (5 layers)"
BALLAST = "mydocker host +ballast"
DIRECT = "runtime in-process"
UNSHARE = "unshare(1)"
CRUN = "crun run"
RUNC = "runc run"
DOCKER_RUN = "docker run --rm busybox"
DOCKER_VERSION = "docker version"


def summarize(samples: list[float]) -> dict[str, float]:
    """Milliseconds: median, p95 (nearest rank), mean, min, max."""
    ms = sorted(s * 1000 for s in samples)
    if not ms:
        return {}
    rank = max(0, math.ceil(0.95 * len(ms)) - 1)
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p95_ms": ms[rank],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _get(summary: dict[str, dict[str, float]], peer: str, key: str) -> float | None:
    return summary.get(peer, {}).get(key)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 7 with the measured figure and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, unit: str, at_most: bool = True) -> None:
        met = None if value is None else (value <= limit if at_most else value >= limit)
        out.append(
            {
                "target": name,
                "value": value,
                "limit": limit,
                "unit": unit,
                "met": met,
                "at_most": at_most,
            }
        )

    lat = result.get("latency", {}).get("summary", {})
    if lat:
        add(
            "host median / unshare median",
            ratio(_get(lat, HOST, "median_ms"), _get(lat, UNSHARE, "median_ms")),
            1.0,
            "x",
        )
        add(
            "host p95 / unshare p95",
            ratio(_get(lat, HOST, "p95_ms"), _get(lat, UNSHARE, "p95_ms")),
            1.5,
            "x",
        )
        add(
            "busybox median / crun median",
            ratio(_get(lat, BUSYBOX, "median_ms"), _get(lat, CRUN, "median_ms")),
            0.5,
            "x",
        )
        add(
            "busybox median / runc median",
            ratio(_get(lat, BUSYBOX, "median_ms"), _get(lat, RUNC, "median_ms")),
            0.15,
            "x",
        )
        # What five layers cost over one: both cold (the pulled image is
        # not in the default warm pool; busybox is) when the cold row ran.
        plain = BUSYBOX_COLD if _get(lat, BUSYBOX_COLD, "median_ms") is not None else BUSYBOX
        add(
            f"pulled 5-layer image median / {plain.removeprefix('mydocker ')} median",
            ratio(_get(lat, LAYERED, "median_ms"), _get(lat, plain, "median_ms")),
            1.1,
            "x",
        )
        change = ratio(_get(lat, BALLAST, "median_ms"), _get(lat, HOST, "median_ms"))
        add("+ballast median change", None if change is None else abs(change - 1) * 100, 10, "%")
        host, direct = _get(lat, HOST, "median_ms"), _get(lat, DIRECT, "median_ms")
        add(
            "HTTP overhead (host - in-process median)",
            None if host is None or direct is None else host - direct,
            1.0,
            "ms",
        )
        _docker_target(lat, add)
    tput = result.get("throughput", {}).get("launches_per_second", {})
    if tput:
        add("host launches/s at 16 clients", tput.get(HOST, {}).get("16"), 400, "/s", at_most=False)
    net = result.get("network")
    if net:
        add("bridge launch added over none (median)", net["added_median_ms"]["bridge"], 1.5, "ms")
    for run in result.get("scale", []):
        n = run["containers"]
        b, d = run["before"], run["during"]
        threads = None
        growth = None
        if b["api"] and d["api"] and b["launcher"] and d["launcher"]:
            threads = (
                d["api"]["threads"]
                - b["api"]["threads"]
                + d["launcher"]["threads"]
                - b["launcher"]["threads"]
            )
            growth = (
                d["api"]["rss_kib"]
                - b["api"]["rss_kib"]
                + d["launcher"]["rss_kib"]
                - b["launcher"]["rss_kib"]
            ) / n
        add(f"{n} running: threads added (API + launcher)", threads, max(1, n // 100), "")
        add(f"{n} running: service memory per container", growth, 100, "KiB")
        add(
            f"{n} running: all reaped after the {_kill_start(run)}",
            run["all_reaped_seconds_after_first_kill"],
            2.0,
            "s",
        )
    return out


def _docker_target(lat: dict[str, dict[str, float]], add: Any) -> None:
    """Issue 17: ``docker run --rm busybox true`` takes at most ``docker
    version`` plus twice the native launch (busybox, else host) median."""
    run, version = _get(lat, DOCKER_RUN, "median_ms"), _get(lat, DOCKER_VERSION, "median_ms")
    native = _get(lat, BUSYBOX, "median_ms") or _get(lat, HOST, "median_ms")
    if run is None or version is None or native is None:
        return
    add(
        "docker run - docker version (<= 2x native median)",
        run - version,
        round(2 * native, 2),
        "ms",
    )


def _kill_start(run: dict[str, Any]) -> str:
    """When the kill phase began: its one bulk request, or the first of many
    (results from before the bulk kill have no ``kill_mode``)."""
    return "bulk kill" if run.get("kill_mode") == "bulk" else "first kill"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(result: dict[str, Any]) -> str:
    lines: list[str] = []
    lat = result.get("latency", {}).get("summary", {})
    if lat:
        peers = [p for p in (UNSHARE, CRUN, RUNC) if p in lat]
        lines.append(
            f"Latency of one launch of /bin/true ({result['config']['runs']} runs "
            "each, interleaved), ms"
        )
        head = f"{'peer':24} {'median':>8} {'p95':>8} {'mean':>8}"
        head += "".join(f" {'med/' + p.split()[0].split('(')[0]:>12}" for p in peers)
        lines.append(head)
        for name, s in lat.items():
            row = f"{name:24} {_fmt(s['median_ms']):>8} {_fmt(s['p95_ms']):>8} "
            row += f"{_fmt(s['mean_ms']):>8}"
            row += "".join(
                f" {_fmt(ratio(s['median_ms'], lat[p]['median_ms'])) + 'x':>12}" for p in peers
            )
            lines.append(row)
        for key, label in (("cpu_ms_per_launch", "the service"), ("cpu_ms_cold", "cold")):
            cpu = result["latency"].get(key)
            if cpu:
                lines.append(
                    f"CPU per launch of {label} (ms): API {cpu['api']:.2f}, launcher "
                    f"{cpu['launcher']:.2f}, zygote {cpu.get('zygote', 0.0):.2f}, "
                    f"containers {cpu['containers']:.2f} "
                    "(children, clock ticks)"
                )
        pool = result["latency"].get("pool")
        if pool:
            lines.append(
                f"Warm pool of the service: {pool['hits']:.0f} launches hit a ready child, "
                f"{pool['misses']:.0f} missed (cold)"
            )
        for name, err in result["latency"].get("errors", {}).items():
            count = result["latency"].get("failures", {}).get(name, 0)
            lines.append(f"  {name}: {count} failed launches (not timed); first: {err}")
        lines.append("")
    tput = result.get("throughput", {}).get("launches_per_second", {})
    if tput:
        conc = result["config"]["concurrency"]
        lines.append("Throughput, launches/s (wait for exit), by concurrent clients")
        lines.append(f"{'peer':24}" + "".join(f" {c:>8}" for c in conc))
        for name, per in tput.items():
            lines.append(f"{name:24}" + "".join(f" {_fmt(per.get(str(c)), 0):>8}" for c in conc))
        if HOST in tput and UNSHARE in tput:
            lines.append(
                f"{'host / unshare':24}"
                + "".join(
                    f" {_fmt(ratio(tput[HOST].get(str(c)), tput[UNSHARE].get(str(c)))) + 'x':>8}"
                    for c in conc
                )
            )
        for name, err in result["throughput"].get("errors", {}).items():
            lines.append(f"  {name}: stopped: {err}")
        for name, failed in result["throughput"].get("failures", {}).items():
            lines.append(
                f"  {name}: {failed['count']} failed launches (not counted); first: "
                f"{failed['first']}"
            )
        lines.append("")
    net = result.get("network")
    if net:
        lines.append(
            f"Network: one launch of `true` by network ({net['runs']} runs each, interleaved, "
            f"load average {net['load_average']}), ms"
        )
        lines.append(f"{'row':24} {'median':>8} {'p90':>8} {'added':>8} {'CPU':>8} {'added':>8}")
        for name, s in net["rows"].items():
            cpu = net["cpu"]["rows"][name]["median_ms"]
            added = net["added_median_ms"].get(name)
            cpu_added = net["cpu"]["added_median_ms"].get(name)
            lines.append(
                f"{name:24} {_fmt(s['median_ms']):>8} {_fmt(s['p90_ms']):>8} "
                f"{_fmt(added):>8} {_fmt(cpu):>8} {_fmt(cpu_added):>8}"
            )
        lines.append("(CPU: the API process and the launcher, per launch)")
        lines.append("")
    for run in result.get("scale", []):
        n = run["containers"]
        lines.append(f"Scale: {n} containers running `sleep`")
        lines.append(
            f"  start all: {_fmt(run['start_seconds'])} s "
            f"({run['running_after_start']} running, "
            f"{run['launcher_children']} launcher children)"
        )
        for who in ("api", "launcher"):
            b, d = run["before"][who], run["during"][who]
            if b and d:
                lines.append(
                    f"  {who:8} RSS {b['rss_kib'] / 1024:.1f} -> {d['rss_kib'] / 1024:.1f} MiB"
                    f" ({(d['rss_kib'] - b['rss_kib']) / n:.1f} KiB/container), threads "
                    f"{b['threads']} -> {d['threads']}, fds {b['fds']} -> {d['fds']}"
                )
        reaped = _fmt(run["all_reaped_seconds_after_first_kill"])
        after_answer = _fmt(run["all_reaped_seconds_after_last_kill"])
        recorded = _fmt(run["all_recorded_exited_seconds_after_first_kill"])
        if run.get("kill_mode") == "bulk":
            lines.append(
                f"  kill: 1 POST /containers/kill ({run['killed']} killed) answered in "
                f"{_fmt(run['kill_requests_seconds'])} s; all reaped {reaped} s after it was "
                f"sent ({after_answer} s after its answer); all recorded exited after {recorded} s"
            )
        else:
            lines.append(
                f"  kill: {run.get('kill_requests', n)} requests in "
                f"{_fmt(run['kill_requests_seconds'])} s; all reaped {reaped} s after the first "
                f"kill ({after_answer} s after the last); all recorded exited after {recorded} s"
            )
        lines.append("")
    for note in result.get("scale_skipped", []):
        lines.append(f"Scale: {note}")
    checks = result.get("targets", [])
    if checks:
        lines.append("Targets (issue 7)")
        for t in checks:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            op = "<=" if t["at_most"] else ">="
            lines.append(
                f"  {t['target']:52} {_fmt(t['value']):>9} {t['unit']:4} "
                f"(target {op} {t['limit']}) {verdict}"
            )
    return "\n".join(lines)
