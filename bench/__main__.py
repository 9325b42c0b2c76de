"""``python -m bench``: run the benchmark (``bench/run`` installs the peers first)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench import bundle, layered, network, parts, report
from bench.peers import DirectPeer, HttpPeer, Peer, docker_peer, oci_peer, unshare_peer
from bench.service import QUIET, ROOT, Service, cpu_seconds, zygote_of

TRUE = ["/bin/true"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--runs", type=int, default=500, help="latency launches per peer")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--concurrency", default="1,4,16", help="throughput client counts")
    p.add_argument("--throughput-seconds", type=float, default=6.0, help="per peer and count")
    p.add_argument("--slices", type=int, default=3, help="alternations per throughput count")
    p.add_argument("--scale", default="1000,2000", help="running-container counts")
    p.add_argument(
        "--scale-kill",
        choices=("bulk", "each"),
        default="bulk",
        help="scale: one POST /containers/kill of the containers' label (bulk), "
        "or one POST /containers/{id}/kill per container from 16 clients (each)",
    )
    p.add_argument("--ballast-mb", type=int, default=200)
    p.add_argument("--parts", default="latency,throughput,scale,network")
    p.add_argument(
        "--network-runs",
        type=int,
        default=100,
        help="network: launches per row (none, bridge, bridge+port; bench/network.py)",
    )
    p.add_argument(
        "--only",
        default="",
        help="latency: only peers whose name has one of "
        "these comma-separated words (e.g. host,unshare)",
    )
    p.add_argument("--output-dir", default=str(ROOT / "bench" / "results"))
    p.add_argument("--work-dir", default=None, help="state dirs and bundles (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="a few iterations of each part (smoke)")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.throughput_seconds, args.slices = 5, 1, 0.3, 1
        args.network_runs = 3
        args.scale = "20"
    return args


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu,
        "python": platform.python_version(),
        "commit": commit,
        "mem_available_kib": _meminfo().get("MemAvailable"),
    }


def _meminfo() -> dict[str, int]:
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    return values


def versions() -> dict[str, str]:
    out = {}
    for tool, flag in (("unshare", "--version"), ("crun", "--version"), ("runc", "--version")):
        if shutil.which(tool):
            text = subprocess.run([tool, flag], capture_output=True, text=True).stdout
            out[tool] = text.splitlines()[0] if text else "?"
    return out


def hybrid_cgroup_view() -> str | None:
    """Let crun run on a cgroup v1/v2 hybrid host whose v2 tree has controllers.

    crun refuses such a host ("cgroups in hybrid mode not supported, drop all
    controllers from cgroupv2").  In a mount namespace of the benchmark's own
    a tmpfs hides /sys/fs/cgroup/unified, so crun sees plain cgroup v1, as
    runc does.  The services were started before, outside it."""
    unified = "/sys/fs/cgroup/unified"
    try:
        with open(f"{unified}/cgroup.controllers") as f:
            if not f.read().split():
                return None
    except OSError:
        return None
    from runtime import libc
    from runtime.namespaces import Namespace

    libc.unshare(int(Namespace.NEWNS))
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    libc.mount("tmpfs", unified, "tmpfs", 0)
    return f"crun and runc ran with {unified} hidden (cgroup v1 only): crun refuses hybrid hosts"


def has_image(service: Service, name: str) -> bool:
    try:
        return httpx.get(f"{service.url}/images/{name}", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def service_cpu(service: Service) -> dict[str, Any]:
    launcher = service.launcher_pid()
    return {
        "api": cpu_seconds(service.pid),
        "launcher": cpu_seconds(launcher),
        "zygote": cpu_seconds(zygote_of(launcher)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: must run as root (the service, unshare, crun and runc need it)")
        return 1
    wanted = set(args.parts.split(","))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="mydocker-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_start": os.getloadavg(),
        "peers": versions(),
        "config": {
            "runs": args.runs,
            "warmup": args.warmup,
            "concurrency": [int(c) for c in args.concurrency.split(",")],
            "throughput_seconds": args.throughput_seconds,
            "ballast_mb": args.ballast_mb,
            "quick": args.quick,
        },
        "notes": [],
    }
    services: list[Service] = []
    peers: list[Peer] = []
    try:
        rootfs = bundle.busybox_rootfs(work / "busybox-rootfs")
        base = Service(work / "state", extra_args=QUIET)
        services.append(base)
        base.start()
        ballast = None
        if "latency" in wanted and args.ballast_mb:
            ballast = Service(
                work / "state-ballast",
                extra_args=QUIET,
                env={"MYDOCKER_BENCH_BALLAST_MB": str(args.ballast_mb)},
            )
            services.append(ballast)
            ballast.start()
        cold = None
        if "latency" in wanted:
            cold = Service(work / "state-cold", extra_args=[*QUIET, "--pool-size", "0"])
            services.append(cold)
            cold.start()
        busybox = has_image(base, "busybox")
        if not busybox:
            result["notes"].append("the service has no busybox image: busybox rows not measured")
        host = HttpPeer(report.HOST, base.url, {"command": TRUE})
        peers.append(host)
        if cold is not None:
            peers.append(HttpPeer(report.HOST_COLD, cold.url, {"command": TRUE}))
        if busybox:
            peers.append(HttpPeer(report.BUSYBOX, base.url, {"command": TRUE, "image": "busybox"}))
            if cold is not None:
                on = {"command": TRUE, "image": "busybox"}
                peers.append(HttpPeer(report.BUSYBOX_COLD, cold.url, on))
            # issue 14: a pulled image's root is an overlay of its layers
            image = layered.load_layered(base, rootfs, 5)
            peers.append(HttpPeer(report.LAYERED, base.url, {"command": TRUE, "image": image}))
        if ballast is not None:
            peers.append(HttpPeer(report.BALLAST, ballast.url, {"command": TRUE}))
            result["ballast_api_rss_kib"] = (parts.proc_status(ballast.pid) or {}).get("rss_kib")
        if "latency" in wanted:
            peers.append(DirectPeer(work / "state-direct", TRUE))
        if "latency" in wanted and busybox and shutil.which("docker"):
            # A service of their own: the base service's CPU per launch
            # counts only the native launches.
            docker_service = Service(work / "state-docker", extra_args=QUIET)
            services.append(docker_service)
            docker_service.start()
            for name, docker_args in (
                (report.DOCKER_RUN, ["run", "--rm", "busybox", *TRUE]),
                (report.DOCKER_VERSION, ["version"]),
            ):
                url = docker_service.url
                peers.append(docker_peer(name, url, work / "docker-config", docker_args))
        elif "latency" in wanted:
            result["notes"].append("no docker CLI or no busybox image: docker rows not measured")
        note = hybrid_cgroup_view()
        if note:
            result["notes"].append(note)
        peers.append(unshare_peer(TRUE))
        for tool in ("crun", "runc"):
            if shutil.which(tool):
                b = bundle.oci_bundle(tool, work / f"{tool}-bundle", rootfs, TRUE)
                peers.append(oci_peer(tool, b))
            else:
                result["notes"].append(f"{tool} is not installed: not measured")
        by_name = {p.name: p for p in peers}
        chosen = [
            p for p in peers if not args.only or any(w in p.name for w in args.only.split(","))
        ]

        if "latency" in wanted:
            parts.log(f"latency: {args.runs} rounds of {len(chosen)} peers")
            measured = [base] if cold is None else [base, cold]
            cpu_before = [service_cpu(svc) for svc in measured]
            pool_before = parts.pool_claims(base)
            lat = parts.latency(chosen, args.runs, args.warmup)
            cpu_after = [service_cpu(svc) for svc in measured]
            pool_after = parts.pool_claims(base)
            on_base = sum(
                len(lat["samples"][name]) + args.warmup
                for name in (report.HOST, report.BUSYBOX)
                if name in lat["samples"]
            )
            lat["cpu_ms_per_launch"] = parts.cpu_per_launch(cpu_before[0], cpu_after[0], on_base)
            if cold is not None:
                on_cold = sum(
                    len(lat["samples"][name]) + args.warmup
                    for name in (report.HOST_COLD, report.BUSYBOX_COLD)
                    if name in lat["samples"]
                )
                lat["cpu_ms_cold"] = parts.cpu_per_launch(cpu_before[1], cpu_after[1], on_cold)
            lat["pool"] = {k: pool_after[k] - pool_before[k] for k in pool_after}
            lat["summary"] = {n: report.summarize(s) for n, s in lat["samples"].items() if s}
            result["latency"] = lat
        if "throughput" in wanted:
            loads = {report.HOST: parts.http_load(base, {"command": TRUE})}
            if busybox:
                loads[report.BUSYBOX] = parts.http_load(base, {"command": TRUE, "image": "busybox"})
            peer_failures: dict[str, list[str]] = {report.UNSHARE: [], report.CRUN: []}
            loads[report.UNSHARE] = parts.peer_load(
                by_name[report.UNSHARE], peer_failures[report.UNSHARE]
            )
            if report.CRUN in by_name:
                loads[report.CRUN] = parts.peer_load(
                    by_name[report.CRUN], peer_failures[report.CRUN]
                )
            result["throughput"] = parts.throughput(
                loads, result["config"]["concurrency"], args.throughput_seconds, args.slices
            )
            result["throughput"]["failures"] = {
                name: {"count": len(errs), "first": errs[0]}
                for name, errs in peer_failures.items()
                if errs
            }
        if "network" in wanted:
            parts.log(f"network: {args.network_runs} rounds of none, bridge, bridge+port")
            result["network"] = network.run(args.network_runs, min(args.warmup, 10))
        if "scale" in wanted:
            for peer in peers:  # no idle keep-alive load on the service meanwhile
                peer.close()
            peers = []
            result["scale"], result["scale_skipped"] = [], []
            for count in [int(c) for c in args.scale.split(",")]:
                need_kib = count * 4096 + (2 << 20)  # a generous 4 MiB per container + 2 GiB
                available = _meminfo()["MemAvailable"]
                if available < need_kib:
                    result["scale_skipped"].append(
                        f"{count}: skipped, {available >> 10} MiB available < {need_kib >> 10}"
                    )
                    continue
                parts.log(f"scale: {count} containers")
                result["scale"].append(parts.scale(base, count, kill=args.scale_kill))
    finally:
        for peer in peers:
            peer.close()
        for svc in services:
            svc.close()
        if os.environ.get("MYDOCKER_BENCH_KEEP_WORK") != "1" and not args.work_dir:
            # Leave our own mount namespace's tmpfs alone; remove only files.
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    result["targets"] = report.targets(result)
    for entry in result.get("latency", {}).get("samples", {}).values():
        entry[:] = [round(s * 1000, 4) for s in entry]  # samples in ms, for the JSON
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=1))
    print()
    print(report.table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"load average: start {result['loadavg_start']}, end {result['loadavg_end']}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
