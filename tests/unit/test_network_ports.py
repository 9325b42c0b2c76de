"""runtime/network/ports.py on loopback, without root: ephemeral ports only."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

import pytest

from runtime.errors import Conflict, InvalidArgument
from runtime.network.firewall import Protocol
from runtime.network.ports import Binding, PortClash, PortHolder

LO = IPv4Address("127.0.0.1")
ANY = IPv4Address("0.0.0.0")


def test_port_0_is_the_kernels_choice_and_is_held_until_released() -> None:
    holder = PortHolder()
    (tcp,) = holder.reserve("c1", [Binding(Protocol.TCP, LO, 0)])
    assert tcp.host_port != 0 and holder.held("c1") == [tcp]
    with socket.socket() as other, pytest.raises(OSError) as info:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", tcp.host_port))
    assert info.value.errno == 98  # EADDRINUSE, even with SO_REUSEADDR on the other side
    assert holder.release("c1") == [tcp]
    with socket.socket() as other:
        other.bind(("127.0.0.1", tcp.host_port))  # free again


def udp_squatter_on_a_tcp_free_port() -> tuple[socket.socket, socket.socket]:
    """A UDP socket on a port whose TCP twin a bound TCP socket holds (to
    close just before the port is wanted for TCP).  A port free for UDP may
    be in TCP use on a busy host (a loopback connection's TIME_WAIT, tcp(7)):
    the kernel's choice for a TCP bind to port 0 is one that is not."""
    for _ in range(100):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(tcp.getsockname())
        except OSError:  # in UDP use: another
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise AssertionError("no port free for both TCP and UDP")


def test_a_clash_is_a_conflict_naming_the_port() -> None:
    holder = PortHolder()
    squatter, tcp_twin = udp_squatter_on_a_tcp_free_port()
    with squatter:
        port = squatter.getsockname()[1]
        with pytest.raises(Conflict, match=f"port {port}/udp on 127.0.0.1 is already in use"):
            holder.reserve("c1", [Binding(Protocol.UDP, LO, port)])
        # The wildcard address clashes with the specific one too.
        with pytest.raises(PortClash):
            holder.reserve("c1", [Binding(Protocol.UDP, ANY, port)])
        # TCP is another space.  (A bound, never connected socket leaves no
        # TIME_WAIT: the port is free once it is closed.)
        tcp_twin.close()
        holder.reserve("c1", [Binding(Protocol.TCP, LO, port)])
    holder.close()


def test_all_of_a_containers_ports_or_none() -> None:
    holder = PortHolder()
    (first,) = holder.reserve("c1", [Binding(Protocol.TCP, LO, 0)])
    with pytest.raises(PortClash):
        holder.reserve("c2", [Binding(Protocol.TCP, LO, 0), first])
    assert holder.held("c2") == []
    holder.close()
    assert holder.held("c1") == []


def test_a_holder_is_rebuilt_from_records_and_reports_what_was_taken() -> None:
    holder = PortHolder()
    (a, b) = holder.reserve("tmp", [Binding(Protocol.TCP, LO, 0), Binding(Protocol.UDP, LO, 0)])
    holder.release("tmp")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", a.host_port))
        rebuilt = PortHolder()
        clashes = rebuilt.restore([("c1", a), ("c2", b)])
    assert [c.binding for c in clashes] == [a]
    assert rebuilt.held("c2") == [b] and rebuilt.held("c1") == []
    rebuilt.close()


def test_an_address_the_host_does_not_have_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="host_ip: 192.0.2.1 is not an address"):
        PortHolder().reserve("c1", [Binding(Protocol.TCP, IPv4Address("192.0.2.1"), 0)])
