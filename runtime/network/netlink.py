"""rtnetlink: the few link, address and route calls of the bridge data plane.

A client of the kernel's routing netlink (rtnetlink(7), netlink(7)) over the
standard library's ``AF_NETLINK`` socket and ``struct``: no ctypes, no
iproute2, no third-party package (pyroute2 cost 12-14 ms for a veth here,
``ip -batch`` 9 ms; docs/networking.md has our figures).

    Netlink              a NETLINK_ROUTE socket, bound to the network namespace
                         of the thread that opened it; ``request`` sends one
                         message and returns the replies, ``dump`` a listing;
                         NLMSG_ERROR becomes OSError(errno, "<operation>: …")
    open_in_namespace    a socket in another netns (setns there and back: for
                         the single-threaded launcher only)
    (runtime/network/rtnl.py encodes the requests and decodes the replies)

Host side (the launcher, in the host's netns):
    create_bridge, create_veth (its peer born inside the container's netns,
    named, addressed and sized there; the host end enslaved and up in the same
    request), delete_link, get_link, links, set_up, add_address, routes;
    adopt_veth: a veth made ahead (a pooled child's host end, maybe on a
    bridge already) sized, up, enslaved and given the container's veth name
    as an alternative name at its claim, in one sendmsg.

Container side (the child, in its own netns, on a socket it opens itself;
or the launcher, on a socket it opened there: ``open_in_namespace``):
    get_link("eth0"), add_address, set_up("lo"), set_up("eth0"), add_default_route;
    quiet_parked and configure_parked: a pooled child's eth0 at its park and
    at its claim.

A socket acts on the network namespace it was created in, whatever namespace
its user moves to later (net/socket.c: ``__sock_create`` takes
``current->nsproxy->net_ns``), which is what ``open_in_namespace`` relies on.
"""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import IPv4Address, IPv4Interface
from types import TracebackType

from runtime import libc
from runtime.namespaces import Namespace
from runtime.network.rtnl import (
    ERRNO,
    IFLA_EXT_MASK,
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_ECHO,
    NLM_F_EXCL,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    RECV_SIZE,
    RT_TABLE_MAIN,
    RTEXT_FILTER_SKIP_STATS,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWLINKPROP,
    RTM_NEWROUTE,
    RTM_SETLINK,
    SOL_NETLINK,
    Link,
    Message,
    Route,
    address_payload,
    adopt_payload,
    altname_payload,
    attr_u32,
    bridge_payload,
    default_route_payload,
    error,
    format_mac,
    get_link_payload,
    hairpin_payload,
    header,
    ifinfomsg,
    link_ref,
    link_settings_payload,
    no_link_local_payload,
    parse_error,
    parse_link,
    parse_messages_at,
    parse_route,
    rtmsg,
    set_up_payload,
    veth_payload,
)

# -- the socket ---------------------------------------------------------------


class Netlink:
    """A NETLINK_ROUTE socket; ``sock`` is the test seam (a socketpair end).

    One request at a time, synchronous: the launcher is single-threaded and the
    child is alone in its namespace.  Replies are matched on the sequence
    number, so a late reply to an earlier request is skipped, not mistaken.
    """

    def __init__(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
            )
            try:
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
                sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
                sock.bind((0, 0))
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._seq = 0
        #: What is left of the last datagram read, after the message that
        #: ended a request (a batch's acks can come in one datagram).
        self._pending = b""

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def request(self, operation: str, msg_type: int, flags: int, payload: bytes) -> list[Message]:
        """Send one request with NLM_F_ACK; return its replies before the ack."""
        return self._exchange(operation, msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, payload)

    def dump(self, operation: str, msg_type: int, payload: bytes) -> list[Message]:
        """A listing: the kernel sends NLM_F_MULTI parts until NLMSG_DONE (no ack)."""
        return self._exchange(operation, msg_type, NLM_F_REQUEST | NLM_F_DUMP, payload)

    def batch(self, requests: list[tuple[str, int, int, bytes]]) -> list[list[Message]]:
        """Several ``(operation, type, flags, payload)`` requests in one
        sendmsg, each with NLM_F_ACK; the replies of each, in order.

        The kernel runs the messages of a datagram one after the other
        (netlink_rcv_skb) and acks each, so one system call and one wake-up
        serve them all.  A failed request does not stop the later ones; the
        first failure (in request order) is raised once all have answered."""
        first = self._seq + 1
        wire = []
        for _operation, msg_type, flags, payload in requests:
            self._seq += 1
            wire.append(header(msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, payload))
        self._sock.send(b"".join(wire))
        answers: dict[int, list[Message]] = {}
        failures: dict[int, OSError] = {}
        for offset, (operation, *_rest) in enumerate(requests):
            try:
                answers[offset] = self._replies(operation, first + offset, NLM_F_ACK)
            except OSError as err:
                failures[offset] = err
        if failures:
            raise failures[min(failures)]
        return [answers[i] for i in range(len(requests))]

    def _exchange(self, operation: str, msg_type: int, flags: int, payload: bytes) -> list[Message]:
        self._seq += 1
        self._sock.send(header(msg_type, flags, self._seq, payload))
        return self._replies(operation, self._seq, flags)

    def _replies(self, operation: str, seq: int, flags: int) -> list[Message]:
        """The messages of request ``seq`` up to its ack (or a dump's end)."""
        replies: list[Message] = []
        while True:
            data = self._pending or self._sock.recv(RECV_SIZE)
            self._pending = b""
            for offset, msg in parse_messages_at(data):
                if msg.seq != seq:
                    continue
                end: list[Message] | None = None
                if msg.type == NLMSG_ERROR:
                    err, text = parse_error(msg)
                    if err:
                        self._pending = data[offset:]
                        raise error(operation, err, text)
                    end = replies
                elif msg.type == NLMSG_DONE:
                    # netlink(7): a dump that failed midway puts the errno here.
                    (status,) = ERRNO.unpack_from(msg.payload) if msg.payload else (0,)
                    if status < 0:
                        self._pending = data[offset:]
                        raise error(operation, -status)
                    end = replies
                else:
                    replies.append(msg)
                    if not flags & NLM_F_ACK and not msg.flags & NLM_F_MULTI:
                        end = replies
                if end is not None:
                    # A batch's later acks may share this datagram: keep them.
                    self._pending = data[offset:]
                    return end


def open_in_namespace(netns_fd: int) -> Netlink:
    """A socket acting on the netns ``netns_fd`` (an open ``/proc/PID/ns/net``).

    setns(2) into it, open the socket, setns back.  Only for a single-threaded
    process such as the launcher: setns moves the calling *thread*, and a
    second thread would never notice the round trip, but nor should it run
    meanwhile.  The child, already in its namespace, just opens ``Netlink()``.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(netns_fd, Namespace.NEWNET)
        try:
            return Netlink()
        finally:
            libc.setns(own, Namespace.NEWNET)
    finally:
        os.close(own)


# -- the operations -------------------------------------------------------------

_CREATE = NLM_F_CREATE | NLM_F_EXCL


def random_mac() -> str:
    """A random unicast, locally administered MAC (bit 1 of the first byte set,
    bit 0 clear), as the kernel's eth_random_addr makes them."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return format_mac(bytes(raw))


def create_bridge(
    nl: Netlink, name: str, mtu: int | None = None, mac: str | None = None, up: bool = True
) -> Link:
    """Create a bridge, up unless told otherwise, and return it as the kernel has it.

    The bridge gets a MAC of its own (random unless given).  Without one it
    takes the lowest MAC of its ports and changes it as ports come and go
    (net/bridge/br_stp_if.c: br_stp_recalculate_bridge_id keeps only an
    address the user set), leaving the containers' ARP entries for the gateway
    stale; Docker sets one for the same reason (libnetwork's setBridgeMacAddr).
    """
    payload = bridge_payload(name, mac or random_mac(), mtu, up)
    nl.request(f"create bridge {name}", RTM_NEWLINK, _CREATE, payload)
    return get_link(nl, name)


def create_veth(
    nl: Netlink,
    name: str,
    *,
    peer_name: str,
    peer_netns_fd: int | None = None,
    peer_mac: str | None = None,
    mtu: int | None = None,
    master: int | None = None,
    up: bool = True,
    link_local: bool = False,
) -> Link | None:
    """Create a veth pair in one round trip: the host end ``name`` (enslaved to
    ``master``, up), the peer ``peer_name`` inside the netns ``peer_netns_fd``
    with ``peer_mac``, down (``configure_link`` brings it up from inside).
    Both ends share ``mtu`` (give the bridge's).  Without ``link_local``
    the host end gets no IPv6 link-local address (``no_link_local_payload``),
    as the networks here are IPv4 only (Docker does the same for them).

    Returns the host end as the kernel echoes it (NLM_F_ECHO), whose ``link``
    is the peer's index in its namespace, which spares a lookup there; None
    from a kernel older than 6.2, which does not echo a new link.

    Deleting the peer's namespace deletes the pair (docs/networking.md):
    nothing needs undoing on the host when a container dies.
    """
    payload = veth_payload(
        name,
        peer_name=peer_name,
        peer_netns_fd=peer_netns_fd,
        peer_mac=peer_mac,
        mtu=mtu,
        master=master,
        up=up,
    )
    requests = [
        (f"create veth {name} (peer {peer_name})", RTM_NEWLINK, _CREATE | NLM_F_ECHO, payload)
    ]
    if not link_local:
        # In the same sendmsg, before the peer is up: the host end has no
        # carrier until then, so IPv6 has not made its link-local yet.
        requests.append(
            (f"no link-local address on {name}", RTM_NEWLINK, 0, no_link_local_payload(name))
        )
    replies = nl.batch(requests)[0]
    for msg in replies:
        if msg.type == RTM_NEWLINK:
            link = parse_link(msg.payload)
            if link.name == name:
                return link
    return None


def adopt_veth(nl: Netlink, index: int, name: str, mtu: int, master: int) -> None:
    """A parked host end sized ``mtu``, up on the bridge ``master``, and
    answering to ``name`` (an alternative name: a rename would wait for an
    RCU grace period), in one sendmsg.  An end parked on that bridge already
    (up, sized) costs the kernel no work but the name: do_setlink skips an
    MTU, a master and flags it already has."""
    nl.batch(
        [
            (f"adopt veth {index}", RTM_NEWLINK, 0, adopt_payload(index, mtu, master)),
            (f"name veth {index} {name}", RTM_NEWLINKPROP, _CREATE, altname_payload(index, name)),
        ]
    )


def delete_link(nl: Netlink, link: int | str) -> None:
    """Delete a link (either end of a veth deletes both)."""
    index, name_attr = link_ref(link)
    nl.request(f"delete link {link}", RTM_DELLINK, 0, ifinfomsg(index) + name_attr)


def set_up(nl: Netlink, link: int | str) -> None:
    """``ip link set LINK up``."""
    nl.request(f"set {link} up", RTM_NEWLINK, 0, set_up_payload(link))


def set_hairpin(nl: Netlink, index: int, on: bool = True) -> None:
    """``bridge link set dev INDEX hairpin on``: the bridge may send a frame
    back out of the port it came in on, so that a container reaches its own
    published ports (docs/networking.md, "Hairpin")."""
    nl.request(f"set hairpin on link {index}", RTM_SETLINK, 0, hairpin_payload(index, on))


def get_link(nl: Netlink, link: int | str) -> Link:
    """A link by name or index; OSError ENODEV when there is none."""
    replies = nl.request(f"get link {link}", RTM_GETLINK, 0, get_link_payload(link))
    for msg in replies:
        if msg.type == RTM_NEWLINK:
            return parse_link(msg.payload)
    raise error(f"get link {link}", errno.ENODEV)


def links(nl: Netlink) -> list[Link]:
    """Every link of the socket's namespace."""
    payload = ifinfomsg() + attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
    return [
        parse_link(m.payload)
        for m in nl.dump("list links", RTM_GETLINK, payload)
        if m.type == RTM_NEWLINK
    ]


def add_address(nl: Netlink, index: int, interface: IPv4Interface | str) -> None:
    """``ip addr add ADDRESS/PREFIX brd + dev INDEX``; EEXIST when it is there."""
    interface = IPv4Interface(interface)
    nl.request(
        f"add address {interface} to link {index}",
        RTM_NEWADDR,
        _CREATE,
        address_payload(index, interface),
    )


def add_default_route(nl: Netlink, gateway: IPv4Address | str, oif: int | None = None) -> None:
    """``ip route add default via GATEWAY [dev OIF]``; ENETUNREACH while no
    address of an up link reaches the gateway (so: address, up, then route)."""
    gateway = IPv4Address(gateway)
    nl.request(
        f"add default route via {gateway}",
        RTM_NEWROUTE,
        _CREATE,
        default_route_payload(gateway, oif),
    )


def configure_link(
    nl: Netlink,
    index: int,
    interface: IPv4Interface | str,
    gateway: IPv4Address | str,
    link_local: bool = False,
) -> None:
    """Address, up, default route via ``gateway``: ``add_address``,
    ``set_up`` and ``add_default_route`` in one sendmsg.  The kernel runs
    them in this order, which the route needs (an address of an up link
    that reaches the gateway).  Without ``link_local``, IPv6 address
    generation is turned off first (``no_link_local_payload``)."""
    interface, gateway = IPv4Interface(interface), IPv4Address(gateway)
    quiet: list[tuple[str, int, int, bytes]] = []
    if not link_local:
        quiet.append(
            (f"no link-local address on link {index}", RTM_NEWLINK, 0, no_link_local_payload(index))
        )
    nl.batch(
        [
            *quiet,
            (
                f"add address {interface} to link {index}",
                RTM_NEWADDR,
                _CREATE,
                address_payload(index, interface),
            ),
            (f"set {index} up", RTM_NEWLINK, 0, set_up_payload(index)),
            (
                f"add default route via {gateway}",
                RTM_NEWROUTE,
                _CREATE,
                default_route_payload(gateway),
            ),
        ]
    )


def quiet_parked(nl: Netlink, index: int) -> None:
    """A parked veth's peer (``create_veth``: born down), from inside its
    namespace: no IPv6 link-local address when it comes up at the claim.
    It stays down, so its host end has no carrier meanwhile (veth(4)): on a
    bridge, that port is disabled and forwards nothing."""
    nl.request(
        f"no link-local address on link {index}", RTM_NEWLINK, 0, no_link_local_payload(index)
    )


def configure_parked(
    nl: Netlink,
    index: int,
    interface: IPv4Interface | str,
    gateway: IPv4Address | str,
    mac: str,
    mtu: int,
    extra: tuple[IPv4Interface, ...] = (),
) -> None:
    """``configure_link`` for a peer made quiet by ``quiet_parked``: its MAC,
    MTU and up in one request (do_setlink applies the address and the MTU
    before the flags), the ``extra`` addresses and the address, then the
    default route, in one sendmsg.  Up, it gives its host end carrier."""
    interface, gateway = IPv4Interface(interface), IPv4Address(gateway)
    nl.batch(
        [
            (
                f"set link {index} to {mac} mtu {mtu} up",
                RTM_NEWLINK,
                0,
                link_settings_payload(index, mac, mtu, up=True),
            ),
            *(
                (
                    f"add address {a} to link {index}",
                    RTM_NEWADDR,
                    _CREATE,
                    address_payload(index, a),
                )
                for a in (*extra, interface)
            ),
            (
                f"add default route via {gateway}",
                RTM_NEWROUTE,
                _CREATE,
                default_route_payload(gateway),
            ),
        ]
    )


def routes(nl: Netlink, table: int = RT_TABLE_MAIN) -> list[Route]:
    """The IPv4 routes of one table (the main one: what `ip route` lists)."""
    replies = nl.dump("list routes", RTM_GETROUTE, rtmsg(table=0, protocol=0))
    found = (parse_route(m.payload) for m in replies if m.type == RTM_NEWROUTE)
    return [r for r in found if r.table == table]


__all__ = [
    "Link",
    "Netlink",
    "Route",
    "add_address",
    "configure_link",
    "add_default_route",
    "create_bridge",
    "create_veth",
    "delete_link",
    "get_link",
    "links",
    "open_in_namespace",
    "random_mac",
    "routes",
    "set_hairpin",
    "set_up",
]
