"""``python -m bench.netlink``: what the bridge data plane adds to a launch.

As root.  Everything happens in a network namespace this command unshares in
a forked child (the host's is never touched): a bridge there, and a target
namespace made by ``unshare --net`` standing for the container.  Measured,
``--runs`` times each (median, p90, in ms):

    veth        create_veth: the pair, its peer born in the target as eth0
                with its MAC and MTU, the host end enslaved and up (the
                launcher's one request); the pair is deleted between runs
    veth+fd     the same plus opening and closing /proc/PID/ns/net
    veth, back to back   ``--runs`` pairs in a row (peers eth0, eth1, …), no
                delete between them
    socket      opening a NETLINK_ROUTE socket (the child opens one)
    configure   the child's side on a socket in the target: look up eth0,
                address, lo up, eth0 up, default route

docs/networking.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from runtime import libc
from runtime.namespaces import Namespace
from runtime.network import ipam
from runtime.network import netlink as nl


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 3),
        "min_ms": round(ms[0], 3),
    }


def _timed(
    runs: int, before: Callable[[], None], step: Callable[[], None], after: Callable[[], None]
) -> list[float]:
    samples = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
        after()
    return samples


def measure(runs: int) -> dict[str, dict[str, float]]:
    """In the caller's network namespace (a throwaway one: see main)."""
    subnet = ipam.Subnet.of("172.17.0.0/16")
    address = ipam.AddressPool(subnet).allocate()
    mac = ipam.mac_for(address)
    target = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    try:
        time.sleep(0.2)  # until unshare(1) has unshared and exec'd sleep
        ns_path = f"/proc/{target.pid}/ns/net"
        with nl.Netlink() as host:
            bridge = nl.create_bridge(host, "bench0")
            nl.add_address(host, bridge.index, subnet.bridge_interface)
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            ctr = nl.open_in_namespace(fd)

            def veth(netns_fd: int) -> None:
                nl.create_veth(
                    host,
                    "vethbench",
                    peer_name="eth0",
                    peer_netns_fd=netns_fd,
                    peer_mac=mac,
                    mtu=bridge.mtu,
                    master=bridge.index,
                )

            def veth_with_fd() -> None:
                netns_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    veth(netns_fd)
                finally:
                    os.close(netns_fd)

            def configure() -> None:
                eth0 = nl.get_link(ctr, "eth0")
                nl.add_address(ctr, eth0.index, subnet.interface(address))
                nl.set_up(ctr, "lo")
                nl.set_up(ctr, eth0.index)
                nl.add_default_route(ctr, subnet.gateway)

            def nothing() -> None:
                pass

            def delete() -> None:
                nl.delete_link(host, "vethbench")

            def create() -> None:
                veth(fd)

            def open_socket() -> None:
                nl.Netlink().close()

            # Back to back, with nothing deleted in between: the deletes of the
            # runs above (synchronous, ~40 ms each here) leave kernel work behind
            # that the next creation can wait on.
            samples = []
            for i in range(runs):
                start = time.perf_counter()
                nl.create_veth(
                    host,
                    f"vb{i}",
                    peer_name=f"eth{i}",
                    peer_netns_fd=fd,
                    peer_mac=mac,
                    mtu=bridge.mtu,
                    master=bridge.index,
                )
                samples.append(time.perf_counter() - start)
            for i in range(runs):
                nl.delete_link(host, f"vb{i}")

            results = {
                "veth, back to back": _stats(samples),
                "veth": _stats(_timed(runs, nothing, create, delete)),
                "veth+fd": _stats(_timed(runs, nothing, veth_with_fd, delete)),
                "socket": _stats(_timed(runs, nothing, open_socket, nothing)),
                "configure": _stats(_timed(runs, create, configure, delete)),
            }
            ctr.close()
            os.close(fd)
            return results
    finally:
        target.kill()
        target.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            libc.unshare(Namespace.NEWNET)  # never the host's namespace
            os.write(write_end, json.dumps(measure(args.runs)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status or not raw:
        sys.exit("bench.netlink: the measuring child failed")
    print(
        json.dumps({"runs": args.runs, "kernel": os.uname().release, **json.loads(raw)}, indent=2)
    )


if __name__ == "__main__":
    main()
