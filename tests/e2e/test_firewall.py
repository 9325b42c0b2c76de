"""runtime/network/firewall.py against the kernel, with real traffic, as root.

Everything happens in a network namespace the test unshares (tests/e2e/
netns.py): three bridges made with netlink.py (networks A and B, and I,
internal), a "container" on each (a peer namespace with a TCP and a UDP echo
server), and an "outside" namespace on a veth of its own, standing for the
world beyond the host.  No nft table is ever made in the host's namespace.
"""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from runtime.network import firewall as fw
from runtime.network import netlink as nl
from runtime.network.nftables import Libnftables, NftCommand
from tests.e2e.netns import Peer, forwarding, in_own_netns
from tests.e2e.netpeer import ECHO_PORT, exchange, serve_echo

A = IPv4Address
NET_A = fw.Network("mdfwa", IPv4Network("10.88.1.0/24"), A("10.88.1.1"))
NET_B = fw.Network("mdfwb", IPv4Network("10.88.2.0/24"), A("10.88.2.1"))
NET_I = fw.Network("mdfwi", IPv4Network("10.88.3.0/24"), A("10.88.3.1"), internal=True)
OUTSIDE_HOST, OUTSIDE_PEER = "192.0.2.1", "192.0.2.2"  # TEST-NET-1, inside our namespaces
HOST_PORT = 7001  # an echo server of the test's namespace ("the host")

PORTS = (
    fw.PublishedPort(fw.Protocol.TCP, fw.ANY, 8080, A("10.88.1.2"), ECHO_PORT),
    fw.PublishedPort(fw.Protocol.UDP, fw.ANY, 8081, A("10.88.1.2"), ECHO_PORT),
    fw.PublishedPort(fw.Protocol.TCP, A("127.0.0.1"), 8082, A("10.88.1.2"), ECHO_PORT),
)
STATE = fw.FirewallState(networks=(NET_A, NET_B, NET_I), ports=PORTS)
QUICK = 0.5  # seconds for a connection that must not get through


def nft(*args: str) -> str:
    return subprocess.run(["nft", *args], check=True, capture_output=True, text=True).stdout


def gets_through(reply: dict[str, Any], seen_as: str) -> None:
    assert reply == {"reply": f"hello from {seen_as}"}, reply


def blocked(reply: dict[str, Any]) -> None:
    assert reply.get("error") in ("timeout", "refused"), reply


def test_published_ports_masquerade_isolation_and_internal_networks() -> None:
    def body() -> None:
        forwarding()
        serve_echo(port=HOST_PORT)
        peers: list[Peer] = []
        try:
            with nl.Netlink() as host:
                a1, b1, i1, outside, a2 = (Peer() for _ in range(5))
                peers += [a1, b1, i1, outside, a2]
                for net, peer, veth in ((NET_A, a1, "vfa"), (NET_B, b1, "vfb"), (NET_I, i1, "vfi")):
                    bridge = nl.create_bridge(host, net.bridge)
                    nl.add_address(host, bridge.index, f"{net.gateway}/{net.subnet.prefixlen}")
                    addr = f"{net.gateway + 1}/{net.subnet.prefixlen}"
                    peer.attach(host, veth, addr, str(net.gateway), bridge)
                    if net is NET_A:
                        a2.attach(host, "vfa2", "10.88.1.3/24", str(net.gateway), bridge)
                outside.attach(host, "vfout", f"{OUTSIDE_PEER}/24", None)
                nl.add_address(host, nl.get_link(host, "vfout").index, f"{OUTSIDE_HOST}/24")

            # Without the firewall, B reaches A: what follows is its doing.
            gets_through(b1.connect("tcp", "10.88.1.2", ECHO_PORT), "10.88.2.2")

            firewall = fw.Firewall(Libnftables())
            firewall.apply(STATE)
            with open("/proc/sys/net/ipv4/conf/mdfwa/route_localnet") as f:
                assert f.read() == "1\n"
            with open("/proc/sys/net/ipv4/conf/all/route_localnet") as f:
                assert f.read() == "0\n"

            # Published ports from the host: 127.0.0.1 (masqueraded to the
            # gateway), the bridge's address, another address of the host.
            gets_through(exchange("tcp", "127.0.0.1", 8080, 2), "10.88.1.1")
            gets_through(exchange("udp", "127.0.0.1", 8081, 2), "10.88.1.1")
            gets_through(exchange("tcp", "127.0.0.1", 8082, 2), "10.88.1.1")
            gets_through(exchange("tcp", "10.88.1.1", 8080, 2), "10.88.1.1")
            gets_through(exchange("udp", "10.88.1.1", 8081, 2), "10.88.1.1")
            gets_through(exchange("tcp", OUTSIDE_HOST, 8080, 2), OUTSIDE_HOST)
            # ... and from outside (prerouting), the client's address kept.
            gets_through(outside.connect("tcp", OUTSIDE_HOST, 8080), OUTSIDE_PEER)
            gets_through(outside.connect("udp", OUTSIDE_HOST, 8081), OUTSIDE_PEER)
            # 8082 is published on 127.0.0.1 only.
            blocked(outside.connect("tcp", OUTSIDE_HOST, 8082, QUICK))
            # Hairpin: another container of A reaching A's port through the host
            # (masqueraded, or a1 would answer a2 directly, from the wrong address).
            gets_through(a2.connect("tcp", "10.88.1.1", 8080), "10.88.1.1")
            # A container reaching its own published port needs its bridge
            # port in hairpin mode (the frame goes back out where it came
            # in), which the integration sets on the veth (Docker does too).
            blocked(a1.connect("tcp", "10.88.1.1", 8080, QUICK))
            subprocess.run(
                ["ip", "link", "set", "vfa", "type", "bridge_slave", "hairpin", "on"], check=True
            )
            gets_through(a1.connect("tcp", "10.88.1.1", 8080), "10.88.1.1")

            # Egress is masqueraded: the outside sees the host's address.
            gets_through(a1.connect("tcp", OUTSIDE_PEER, ECHO_PORT), OUTSIDE_HOST)
            gets_through(b1.connect("udp", OUTSIDE_PEER, ECHO_PORT), OUTSIDE_HOST)
            # Networks are isolated from each other.
            blocked(b1.connect("tcp", "10.88.1.2", ECHO_PORT, QUICK))
            blocked(a1.connect("udp", "10.88.2.2", ECHO_PORT, QUICK))
            # The internal network reaches its gateway only: not the outside,
            # not another network, not the host's other addresses.
            gets_through(i1.connect("tcp", "10.88.3.1", HOST_PORT), "10.88.3.2")
            blocked(i1.connect("tcp", OUTSIDE_PEER, ECHO_PORT, QUICK))
            blocked(i1.connect("tcp", "10.88.1.2", ECHO_PORT, QUICK))
            blocked(i1.connect("tcp", OUTSIDE_HOST, HOST_PORT, QUICK))
            blocked(a1.connect("tcp", "10.88.3.2", ECHO_PORT, QUICK))

            # A port published later is one element update, and goes again.
            later = fw.PublishedPort(fw.Protocol.TCP, fw.ANY, 9090, A("10.88.2.2"), ECHO_PORT)
            firewall.publish([later])
            gets_through(exchange("tcp", "127.0.0.1", 9090, 2), "10.88.2.1")
            firewall.unpublish([later])
            blocked(exchange("tcp", "127.0.0.1", 9090, QUICK))

            # The same state again, through nft(8) this time: the same table.
            before = nft("list", "table", "inet", "mydocker")
            fw.Firewall(NftCommand()).apply(STATE)
            assert nft("list", "table", "inet", "mydocker") == before
            gets_through(exchange("tcp", "127.0.0.1", 8080, 2), "10.88.1.1")

            firewall.teardown()
            assert nft("list", "tables") == ""
            firewall.teardown()  # nothing left to remove: still fine
            blocked(exchange("tcp", "127.0.0.1", 8080, QUICK))
        finally:
            for peer in peers:
                peer.close()

    in_own_netns(body)


def test_a_bad_script_changes_nothing_and_says_why() -> None:
    def body() -> None:
        firewall = fw.Firewall(Libnftables())
        firewall.apply(fw.FirewallState(networks=(NET_A,), ports=PORTS))
        before = nft("list", "ruleset")
        # A port update for a table that has no such element: the whole
        # transaction fails, and the table is as it was.
        missing = fw.PublishedPort(fw.Protocol.UDP, fw.ANY, 9999, A("10.88.1.9"), 53)
        try:
            firewall.publish(PORTS[:1])  # already there: add element is idempotent
            firewall.unpublish([PORTS[0], missing])
        except Exception as err:
            assert "unpublish ports: Error" in str(err), err
        else:
            raise AssertionError("deleting a missing element succeeded")
        assert nft("list", "ruleset") == before
        firewall.teardown()
        assert nft("list", "tables") == ""

    in_own_netns(body)
