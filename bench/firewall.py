"""``python -m bench.firewall``: what the firewall costs, and what DNAT adds.

As root.  Everything happens in a network namespace this command unshares in
a forked child (the host's is never touched, and no nft table is made
there): a bridge, a "container" (tests/e2e/netpeer.py in a namespace of its
own on a veth, with a TCP echo server), and the firewall's table.  Measured:

    apply        firewall.apply of 3 networks and ``--ports`` published ports
                 (the whole table replaced in one transaction), per backend:
                 libnftables through ctypes, and ``nft -f -``
    port         one publish plus one unpublish (element updates), per backend
    rtt          a TCP round trip of 1 byte (TCP_NODELAY, one connection,
                 ``--rtts`` round trips, three interleaved rounds) to:
                 loopback   an echo server in another process on 127.0.0.1,
                            no NAT: the baseline
                 dnat       127.0.0.1:<published port>, DNAT'ed to the container
                 direct     the container's address, no NAT (what the veth costs)

docs/networking.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from runtime import libc
from runtime.namespaces import Namespace
from runtime.network import firewall as fw
from runtime.network import netlink as nl
from runtime.network.nftables import Libnftables, Nft, NftCommand
from tests.e2e.netns import Peer, forwarding
from tests.e2e.netpeer import ECHO_PORT, rtt

A = IPv4Address
NETS = (
    fw.Network("mdbench0", IPv4Network("10.77.0.0/24"), A("10.77.0.1")),
    fw.Network("mdbench1", IPv4Network("10.77.1.0/24"), A("10.77.1.1")),
    fw.Network("mdbench2", IPv4Network("10.77.2.0/24"), A("10.77.2.1"), internal=True),
)
CONTAINER = A("10.77.0.2")
PUBLISHED = 8080
LOOPBACK_PORT = 7100


def _stats(samples: list[float], scale: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered) * scale, 3),
        "p90": round(ordered[int(len(ordered) * 0.9)] * scale, 3),
        "min": round(ordered[0] * scale, 3),
    }


def _timed(runs: int, step: Callable[[], None]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return samples


def _firewall_steps(
    name: str, firewall: fw.Firewall, state: fw.FirewallState, one: fw.PublishedPort, runs: int
) -> dict[str, dict[str, float]]:
    def port() -> None:
        firewall.publish([one])
        firewall.unpublish([one])

    return {
        f"apply ({name})": _stats(_timed(runs, lambda: firewall.apply(state)), 1e3),
        # Two updates per run: the figure is one update.
        f"publish one port ({name})": _stats(_timed(runs, port), 1e3 / 2),
    }


def measure(runs: int, ports: int, rtts: int) -> dict[str, dict[str, float]]:
    forwarding()
    with nl.Netlink() as host:
        nl.set_up(host, "lo")
        for net in NETS:
            bridge = nl.create_bridge(host, net.bridge)
            nl.add_address(host, bridge.index, f"{net.gateway}/{net.subnet.prefixlen}")
        container, baseline = Peer(), Peer(own_netns=False)
        try:
            container.attach(
                host,
                "vbench0",
                f"{CONTAINER}/24",
                str(NETS[0].gateway),
                nl.get_link(host, "mdbench0"),
            )
            assert baseline.ask(serve=LOOPBACK_PORT) == {"step": "serving"}
            published = [
                fw.PublishedPort(fw.Protocol.TCP, fw.ANY, PUBLISHED, CONTAINER, ECHO_PORT),
                *(
                    fw.PublishedPort(fw.Protocol.TCP, fw.ANY, 20000 + i, CONTAINER, ECHO_PORT)
                    for i in range(ports - 1)
                ),
            ]
            state = fw.FirewallState(networks=NETS, ports=tuple(published))
            one = fw.PublishedPort(fw.Protocol.UDP, fw.ANY, 9999, CONTAINER, 53)
            results: dict[str, dict[str, float]] = {}
            backends: list[tuple[str, Nft]] = [
                ("libnftables", Libnftables()),
                ("nft -f -", NftCommand()),
            ]
            for name, nft in backends:
                results.update(_firewall_steps(name, fw.Firewall(nft), state, one, runs))
            firewall = fw.Firewall(Libnftables())
            firewall.apply(state)
            samples: dict[str, list[float]] = {"loopback": [], "dnat": [], "direct": []}
            targets = {
                "loopback": ("127.0.0.1", LOOPBACK_PORT),
                "dnat": ("127.0.0.1", PUBLISHED),
                "direct": (str(CONTAINER), ECHO_PORT),
            }
            for _ in range(3):
                for what, (ip, port) in targets.items():
                    samples[what] += rtt(ip, port, rtts)
            for what, seconds in samples.items():
                results[f"rtt {what} (µs)"] = _stats(seconds, 1e6)
            firewall.teardown()
            return results
        finally:
            container.close()
            baseline.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--ports", type=int, default=50)
    parser.add_argument("--rtts", type=int, default=3000)
    args = parser.parse_args()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            libc.unshare(Namespace.NEWNET)  # never the host's namespace
            out = json.dumps(measure(args.runs, args.ports, args.rtts))
            status = 0
        except BaseException as err:
            out = json.dumps({"error": repr(err)})
        finally:
            os.write(write_end, out.encode())
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        results = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    if "error" in results:
        sys.exit(f"bench.firewall: {results['error']}")
    print(f"{'step':32} {'median':>9} {'p90':>9} {'min':>9}   (ms unless said)")
    for step, s in results.items():
        print(f"{step:32} {s['median']:9.3f} {s['p90']:9.3f} {s['min']:9.3f}")


if __name__ == "__main__":
    main()
