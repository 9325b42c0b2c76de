"""runtime/network/netlink.py without root: the request loop against a fake
kernel (a socketpair), the messages built and read as test_network_rtnl.py
checks them."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv4Network

import pytest

from runtime.network import netlink as nl
from runtime.network import rtnl
from tests.unit.test_network_rtnl import HDR, error_message, link_message


@pytest.fixture
def kernel() -> Iterator[tuple[nl.Netlink, socket.socket]]:
    """A Netlink on one end of a socketpair; the test plays the kernel on the other."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with nl.Netlink(ours) as client:
        yield client, theirs
    theirs.close()


def test_an_error_becomes_oserror_naming_the_operation(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    # The create fails; the link-local request sent with it then finds no link.
    fake.send(error_message(1, errno.EPERM, "nope") + error_message(2, errno.ENODEV))
    with pytest.raises(PermissionError) as info:
        nl.create_veth(client, "veth0", peer_name="eth0", peer_netns_fd=9)
    assert info.value.errno == errno.EPERM
    assert str(info.value) == (
        "[Errno 1] create veth veth0 (peer eth0): Operation not permitted (nope)"
    )
    sent = fake.recv(4096)
    length, msg_type, flags, seq, _ = HDR.unpack_from(sent)
    assert (msg_type, seq) == (rtnl.RTM_NEWLINK, 1) and length < len(sent)
    create = rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL | rtnl.NLM_F_ECHO  # echo: the peer's index
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | create


def test_replies_to_other_requests_are_skipped_and_an_ack_ends_the_wait(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    # A stale error for seq 99 must not fail request 1; its reply then its ack.
    fake.send(error_message(99, errno.EINVAL))
    fake.send(
        rtnl.header(
            rtnl.RTM_NEWLINK, 0, 1, link_message(2, "eth0", mtu=rtnl.attr_u32(rtnl.IFLA_MTU, 1500))
        )
        + error_message(1, 0)
    )
    link = nl.get_link(client, "eth0")
    assert (link.index, link.name, link.mtu) == (2, "eth0", 1500)


def test_a_dump_reads_parts_until_done(kernel: tuple[nl.Netlink, socket.socket]) -> None:
    client, fake = kernel
    multi = rtnl.NLM_F_MULTI
    fake.send(
        rtnl.header(rtnl.RTM_NEWLINK, multi, 1, link_message(1, "lo"))
        + rtnl.header(rtnl.RTM_NEWLINK, multi, 1, link_message(2, "br0"))
    )
    fake.send(rtnl.header(rtnl.RTM_NEWLINK, multi, 1, link_message(3, "veth0")))
    fake.send(rtnl.header(rtnl.NLMSG_DONE, multi, 1, struct.pack("=i", 0)))
    assert [link.name for link in nl.links(client)] == ["lo", "br0", "veth0"]
    _, _, flags, _, _ = HDR.unpack_from(fake.recv(4096))
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_DUMP  # a dump asks for no ack


def test_a_dump_that_fails_midway_raises(kernel: tuple[nl.Netlink, socket.socket]) -> None:
    client, fake = kernel
    fake.send(rtnl.header(rtnl.NLMSG_DONE, rtnl.NLM_F_MULTI, 1, struct.pack("=i", -errno.EINTR)))
    with pytest.raises(InterruptedError, match="list routes: Interrupted system call"):
        nl.routes(client)


def test_routes_keep_the_main_table(kernel: tuple[nl.Netlink, socket.socket]) -> None:
    client, fake = kernel

    def route(dst: str, table: int) -> bytes:
        net = IPv4Network(dst)
        payload = struct.pack(
            "=BBBBBBBBI", socket.AF_INET, net.prefixlen, 0, 0, table, 4, 0, 1, 0
        ) + rtnl.attr(rtnl.RTA_DST, net.network_address.packed)
        return rtnl.header(rtnl.RTM_NEWROUTE, rtnl.NLM_F_MULTI, 1, payload)

    fake.send(route("10.0.0.0/8", 254) + route("127.0.0.0/8", 255))
    fake.send(rtnl.header(rtnl.NLMSG_DONE, rtnl.NLM_F_MULTI, 1, struct.pack("=i", 0)))
    assert [r.dst for r in nl.routes(client)] == [IPv4Network("10.0.0.0/8")]


def sent_messages(fake: socket.socket) -> list[tuple[int, int, int]]:
    """(type, flags, seq) of each message of the next datagram we sent."""
    return [(m.type, m.flags, m.seq) for m in rtnl.parse_messages(fake.recv(65536))]


def test_configure_link_sends_three_requests_in_one_datagram(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    # The kernel's acks, two in one datagram and the last in another.
    fake.send(error_message(1, 0) + error_message(2, 0) + error_message(3, 0))
    fake.send(error_message(4, 0))
    nl.configure_link(client, 2, "10.1.0.2/24", "10.1.0.1")
    ack, create = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    assert sent_messages(fake) == [
        (rtnl.RTM_NEWLINK, ack, 1),  # no IPv6 link-local, before the link is up
        (rtnl.RTM_NEWADDR, ack | create, 2),
        (rtnl.RTM_NEWLINK, ack, 3),  # up, after the address and before the route
        (rtnl.RTM_NEWROUTE, ack | create, 4),
    ]
    # The next request starts clean: nothing of the batch is left over.
    fake.send(error_message(5, 0))
    nl.set_up(client, "lo")
    fake.recv(4096)
    # With link_local, the address generation is left alone.
    fake.send(error_message(6, 0) + error_message(7, 0) + error_message(8, 0))
    nl.configure_link(client, 2, "10.1.0.2/24", "10.1.0.1", link_local=True)
    assert [m[0] for m in sent_messages(fake)] == [
        rtnl.RTM_NEWADDR,
        rtnl.RTM_NEWLINK,
        rtnl.RTM_NEWROUTE,
    ]


def test_a_batch_reads_every_ack_then_raises_the_first_failure(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    fake.send(
        error_message(1, 0)
        + error_message(2, errno.EEXIST, "exists")
        + error_message(3, 0)
        + error_message(4, errno.ENETUNREACH)
    )
    first = r"add address 10.1.0.2/24 to link 2: File exists \(exists\)"
    with pytest.raises(FileExistsError, match=first):
        nl.configure_link(client, 2, "10.1.0.2/24", "10.1.0.1")
    # Request 4's ack was read with the batch: request 5 sees only its own.
    fake.send(rtnl.header(rtnl.RTM_NEWLINK, 0, 5, link_message(2, "eth0")) + error_message(5, 0))
    assert nl.get_link(client, 2).name == "eth0"


def test_create_veth_returns_the_echoed_host_end(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    echoed = link_message(9, "veth0", peer=rtnl.attr_u32(rtnl.IFLA_LINK, 2))
    fake.send(rtnl.header(rtnl.RTM_NEWLINK, 0, 1, echoed) + error_message(1, 0))
    fake.send(error_message(2, 0))
    host_end = nl.create_veth(client, "veth0", peer_name="eth0", peer_netns_fd=9)
    assert host_end is not None and (host_end.index, host_end.link) == (9, 2)
    # With it: the create, then the host end's address generation turned off.
    assert [m[0] for m in sent_messages(fake)] == [rtnl.RTM_NEWLINK, rtnl.RTM_NEWLINK]
    fake.send(error_message(3, 0))  # a kernel before 6.2 only acks
    kept = nl.create_veth(client, "veth1", peer_name="eth0", peer_netns_fd=9, link_local=True)
    assert kept is None and len(sent_messages(fake)) == 1


def test_a_parked_veth_is_made_ready_adopted_and_configured_in_one_datagram_each(
    kernel: tuple[nl.Netlink, socket.socket],
) -> None:
    client, fake = kernel
    ack, create = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    fake.send(error_message(1, 0))
    nl.quiet_parked(client, 3)
    assert sent_messages(fake) == [(rtnl.RTM_NEWLINK, ack, 1)]  # no link-local; stays down
    fake.send(error_message(2, 0) + error_message(3, 0))
    nl.adopt_veth(client, 41, "vethabc", 1500, 10)
    assert sent_messages(fake) == [
        (rtnl.RTM_NEWLINK, ack, 2),  # MTU, up, master
        (rtnl.RTM_NEWLINKPROP, ack | create, 3),  # the container's name, an altname
    ]
    fake.send(b"".join(error_message(seq, 0) for seq in range(4, 8)))
    extra = (IPv4Interface("169.254.9.9/16"),)
    nl.configure_parked(client, 3, "10.1.0.2/24", "10.1.0.1", "02:42:0a:01:00:02", 1500, extra)
    sent = sent_messages(fake)
    assert sent == [
        (rtnl.RTM_NEWLINK, ack, 4),  # MAC, MTU and up
        (rtnl.RTM_NEWADDR, ack | create, 5),  # the link-local one first
        (rtnl.RTM_NEWADDR, ack | create, 6),
        (rtnl.RTM_NEWROUTE, ack | create, 7),
    ]
