"""runtime/network/dns.py on real bridges, queried from containers, as root.

In a network namespace of the test's own (tests/e2e/netns.py): two bridges,
"one" and "two" (internal, behind the firewall), a container on each, and
the server listening on each gateway's port 53.  A fake upstream resolver on
the test namespace's 127.0.0.1 stands for the host's.
"""

from __future__ import annotations

import socket
import threading
from ipaddress import IPv4Address, IPv4Network

from runtime.network import dns
from runtime.network import firewall as fw
from runtime.network import netlink as nl
from runtime.network.nftables import Libnftables
from tests.e2e.netns import Peer, forwarding, in_own_netns

A = IPv4Address
ONE = fw.Network("mddns1", IPv4Network("10.89.1.0/24"), A("10.89.1.1"))
TWO = fw.Network("mddns2", IPv4Network("10.89.2.0/24"), A("10.89.2.1"), internal=True)


def fake_upstream() -> tuple[str, int]:
    """Answers every A query with 192.0.2.7, on 127.0.0.1 of the test's namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            raw, client = sock.recvfrom(4096)
            query = dns.Message.parse(raw)
            sock.sendto(dns.response(query, dns.NOERROR, [A("192.0.2.7")]).encode(), client)

    threading.Thread(target=serve, daemon=True).start()
    address: tuple[str, int] = sock.getsockname()
    return address


def test_containers_resolve_the_names_of_their_own_network() -> None:
    def body() -> None:
        forwarding()
        table = dns.NameTable()
        server = dns.DnsServer(table, upstreams=[fake_upstream()], timeout=1)
        peers: list[Peer] = []
        try:
            c1, c2 = Peer(), Peer()
            peers += [c1, c2]
            with nl.Netlink() as host:
                for net, peer, veth in ((ONE, c1, "vd1"), (TWO, c2, "vd2")):
                    bridge = nl.create_bridge(host, net.bridge)
                    nl.add_address(host, bridge.index, f"{net.gateway}/{net.subnet.prefixlen}")
                    addr = f"{net.gateway + 1}/{net.subnet.prefixlen}"
                    peer.attach(host, veth, addr, str(net.gateway), bridge)
                    server.listen(net.bridge, net.gateway)
            firewall = fw.Firewall(Libnftables())
            firewall.apply(fw.FirewallState(networks=(ONE, TWO)))
            table.add("mddns1", A("10.89.1.2"), ["c1", "web"])
            table.add("mddns2", A("10.89.2.2"), ["c2"])

            def ask(peer: Peer, gateway: IPv4Address, name: str) -> tuple[int, list[str]]:
                reply = peer.ask(query=[str(gateway), 53, name], timeout=3)
                assert "error" not in reply, reply
                return reply["rcode"], reply["addresses"]

            assert ask(c1, ONE.gateway, "c1") == (dns.NOERROR, ["10.89.1.2"])
            assert ask(c1, ONE.gateway, "web") == (dns.NOERROR, ["10.89.1.2"])
            assert ask(c1, ONE.gateway, "nosuch") == (dns.NXDOMAIN, [])
            # Names are per network: c2's is unknown on c1's network.
            assert ask(c1, ONE.gateway, "c2") == (dns.NXDOMAIN, [])
            # The internal network reaches its own DNS through the firewall.
            assert ask(c2, TWO.gateway, "c2") == (dns.NOERROR, ["10.89.2.2"])
            # Other names go to the host's resolver (here, the fake one).
            assert ask(c1, ONE.gateway, "example.org") == (dns.NOERROR, ["192.0.2.7"])
            # A removed container's name is gone at once.
            table.remove("mddns2", A("10.89.2.2"))
            assert ask(c2, TWO.gateway, "c2") == (dns.NXDOMAIN, [])
            firewall.teardown()
        finally:
            server.close()
            for peer in peers:
                peer.close()

    in_own_netns(body)
