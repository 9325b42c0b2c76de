"""rtnetlink messages: the bytes of the requests and the reading of the replies.

The wire format of routing netlink (netlink(7), rtnetlink(7)), pure and
unit-tested without root; ``runtime/network/netlink.py`` sends and receives them.

    constants    message types and flags, attribute types, of <linux/netlink.h>,
                 <linux/rtnetlink.h>, <linux/if_link.h>, <linux/veth.h>
    encoding     header, attr, nested, ifinfomsg, ifaddrmsg, rtmsg and the
                 payload builders (*_payload)
    decoding     parse_messages, parse_attrs, parse_error, Link, Route
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

# <linux/netlink.h>: message types and flags (netlink(7)).
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
# netlink(7): send the request's result back (rtnl_newlink honours it since
# Linux 6.2: the new link's RTM_NEWLINK comes back before the ack).
NLM_F_ECHO = 0x8
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
# Flags of an NLMSG_ERROR reply: the request was not echoed back (CAPPED);
# extended-ack attributes follow (ACK_TLVS).
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
# Socket options (netlink(7)): NETLINK_CAP_ACK spares us the copy of our own
# request in every ack; NETLINK_EXT_ACK asks for the kernel's error text.
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# <linux/rtnetlink.h>: message types (rtnetlink(7)).
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTM_NEWLINKPROP = 108
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what `ip route add` uses when no proto is given
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4

# <linux/if_link.h>, <linux/veth.h>, <net/if.h>
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_AF_SPEC = 26
IFLA_NUM_TX_QUEUES = 31
IFLA_NUM_RX_QUEUES = 32
IFLA_PROP_LIST = 52
IFLA_ALT_IFNAME = 53
# <linux/if_link.h>: IFLA_AF_SPEC → AF_INET6 → IFLA_INET6_ADDR_GEN_MODE.
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
VETH_INFO_PEER = 1
IFF_UP = 0x1
# <linux/if_link.h>: a bridge port's attributes, inside IFLA_PROTINFO.
IFLA_BRPORT_MODE = 4
IFNAMSIZ = 16

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLATTR = struct.Struct("=HH")  # len, type
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
# family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
ERRNO = struct.Struct("=i")
_U32 = struct.Struct("=I")
RECV_SIZE = 1 << 16


def _align(n: int) -> int:
    # NLMSG_ALIGN and NLA_ALIGN: 4 bytes.
    return (n + 3) & ~3


# -- encoding ---------------------------------------------------------------


def header(msg_type: int, flags: int, seq: int, payload: bytes) -> bytes:
    """One netlink message: ``nlmsghdr`` + payload (port id 0: the kernel fills it)."""
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, flags, seq, 0) + payload


def attr(attr_type: int, data: bytes) -> bytes:
    """One ``rtattr``/``nlattr``: length, type, data, padded to 4 bytes."""
    size = _NLATTR.size + len(data)
    return _NLATTR.pack(size, attr_type) + data + b"\0" * (_align(size) - size)


def attr_u32(attr_type: int, value: int) -> bytes:
    return attr(attr_type, _U32.pack(value))


def attr_str(attr_type: int, value: str) -> bytes:
    return attr(attr_type, value.encode() + b"\0")


def nested(attr_type: int, *children: bytes) -> bytes:
    """An attribute holding attributes (NLA_F_NESTED set, as iproute2's addattr_nest)."""
    return attr(attr_type | NLA_F_NESTED, b"".join(children))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def ifaddrmsg(index: int, prefixlen: int) -> bytes:
    return _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)


def rtmsg(dst_len: int = 0, table: int = RT_TABLE_MAIN, protocol: int = RTPROT_BOOT) -> bytes:
    return _RTMSG.pack(
        socket.AF_INET, dst_len, 0, 0, table, protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )


def parse_mac(mac: str) -> bytes:
    """``"02:42:ac:11:00:02"`` → 6 bytes; ValueError otherwise."""
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6 or mac.count(":") != 5:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _check_name(name: str) -> None:
    # netdevice(7): names are at most IFNAMSIZ - 1 bytes; the kernel would say
    # EINVAL without telling which name.
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
        raise ValueError(f"not an interface name (1 to {IFNAMSIZ - 1} bytes): {name!r}")


def link_ref(link: int | str) -> tuple[int, bytes]:
    """An ifinfomsg index, or 0 and an IFLA_IFNAME (rtnl_newlink and
    rtnl_dellink look a device up by name when the index is 0)."""
    if isinstance(link, int):
        return link, b""
    _check_name(link)
    return 0, attr_str(IFLA_IFNAME, link)


def bridge_payload(name: str, mac: str, mtu: int | None = None, up: bool = True) -> bytes:
    """RTM_NEWLINK of a bridge (``ip link add NAME address MAC [mtu N] type bridge``, up)."""
    _check_name(name)
    return (
        ifinfomsg(flags=IFF_UP if up else 0, change=IFF_UP)
        + attr_str(IFLA_IFNAME, name)
        + attr(IFLA_ADDRESS, parse_mac(mac))
        + (attr_u32(IFLA_MTU, mtu) if mtu is not None else b"")
        + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
    )


#: One tx and one rx queue for each end of a veth, as many as it uses.
#: Without them a veth is made with a queue per possible CPU, then
#: veth_init_queues (drivers/net/veth.c) cuts the real tx queues down to one
#: under the rtnl lock, and netif_set_real_num_tx_queues waits for an RCU
#: grace period (synchronize_net) to disable the others: the longest wait of
#: a launch on a busy machine (docs/networking.md, "Where the time went").
ONE_QUEUE = attr_u32(IFLA_NUM_TX_QUEUES, 1) + attr_u32(IFLA_NUM_RX_QUEUES, 1)


def veth_payload(
    name: str,
    *,
    peer_name: str,
    peer_netns_fd: int | None = None,
    peer_mac: str | None = None,
    mtu: int | None = None,
    master: int | None = None,
    up: bool = True,
) -> bytes:
    """RTM_NEWLINK of a veth pair, everything in one request.

    The peer's attributes sit in IFLA_INFO_DATA → VETH_INFO_PEER, after an
    ifinfomsg of its own (drivers/net/veth.c: veth_newlink parses them as a
    link of their own): its name, MAC, MTU and IFLA_NET_NS_FD, so that it is
    born inside the container's namespace (rtnl_link_get_net) and never needs
    moving.  The host end's IFLA_MASTER and IFF_UP are applied by rtnl_newlink
    after it registers the pair (rtnl_configure_link, then do_set_master).
    The peer cannot be brought up in the same request: veth_newlink
    configures it before the pair is linked, and veth_open refuses
    (ENOTCONN) while it has no peer.
    """
    _check_name(name)
    _check_name(peer_name)
    peer = (
        ifinfomsg()
        + attr_str(IFLA_IFNAME, peer_name)
        + (attr(IFLA_ADDRESS, parse_mac(peer_mac)) if peer_mac is not None else b"")
        + (attr_u32(IFLA_MTU, mtu) if mtu is not None else b"")
        + (attr_u32(IFLA_NET_NS_FD, peer_netns_fd) if peer_netns_fd is not None else b"")
        + ONE_QUEUE
    )
    return (
        ifinfomsg(flags=IFF_UP if up else 0, change=IFF_UP)
        + attr_str(IFLA_IFNAME, name)
        + ONE_QUEUE
        + (attr_u32(IFLA_MTU, mtu) if mtu is not None else b"")
        + (attr_u32(IFLA_MASTER, master) if master is not None else b"")
        + nested(
            IFLA_LINKINFO,
            attr_str(IFLA_INFO_KIND, "veth"),
            nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER | NLA_F_NESTED, peer)),
        )
    )


def adopt_payload(index: int, mtu: int, master: int) -> bytes:
    """RTM_NEWLINK of an existing, down link: sized ``mtu``, up, enslaved
    to ``master``, in one request (do_setlink, net/core/rtnetlink.c,
    applies the MTU, then the flags, then the master)."""
    return (
        ifinfomsg(index, flags=IFF_UP, change=IFF_UP)
        + attr_u32(IFLA_MTU, mtu)
        + attr_u32(IFLA_MASTER, master)
    )


def altname_payload(index: int, name: str) -> bytes:
    """RTM_NEWLINKPROP, as ``ip link property add dev INDEX altname NAME``:
    the kernel finds a link by any of its alternative names wherever it
    takes IFLA_IFNAME (they share the name hash, net/core/dev.c), so the
    link answers to ``name`` without a rename, which waits for an RCU grace
    period under the rtnl lock (dev_change_name: synchronize_net)."""
    _check_name(name)
    return ifinfomsg(index) + nested(IFLA_PROP_LIST, attr_str(IFLA_ALT_IFNAME, name))


def link_settings_payload(index: int, mac: str, mtu: int, up: bool = False) -> bytes:
    """RTM_NEWLINK of an existing link: its MAC and MTU, and ``up``."""
    flags = ifinfomsg(index, flags=IFF_UP, change=IFF_UP) if up else ifinfomsg(index)
    return flags + attr(IFLA_ADDRESS, parse_mac(mac)) + attr_u32(IFLA_MTU, mtu)


def set_up_payload(link: int | str, up: bool = True) -> bytes:
    index, name_attr = link_ref(link)
    return ifinfomsg(index, flags=IFF_UP if up else 0, change=IFF_UP) + name_attr


def no_link_local_payload(link: int | str) -> bytes:
    """RTM_NEWLINK of an existing link, ``ip link set LINK addrgenmode none``:
    IPv6 makes no link-local address when the link comes up, so no duplicate
    address detection, router solicitations or MLD reports follow
    (net/ipv6/addrconf.c: addrconf_addr_gen).  Only for an existing link: the
    create request refuses IFLA_AF_SPEC (EAFNOSUPPORT)."""
    index, name_attr = link_ref(link)
    mode = attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
    return ifinfomsg(index) + name_attr + nested(IFLA_AF_SPEC, nested(socket.AF_INET6, mode))


def hairpin_payload(index: int, on: bool = True) -> bytes:
    """RTM_SETLINK of family AF_BRIDGE, as ``bridge link set dev X hairpin on``:
    br_setlink (net/bridge/br_netlink.c) reads IFLA_PROTINFO, which must be
    nested, and sets the port's BR_HAIRPIN_MODE from IFLA_BRPORT_MODE."""
    header = _IFINFOMSG.pack(socket.AF_BRIDGE, 0, index, 0, 0)
    return header + nested(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])))


def address_payload(index: int, interface: IPv4Interface) -> bytes:
    """RTM_NEWADDR as ``ip addr add A/N brd + dev X``: IFA_LOCAL is the
    address, IFA_ADDRESS the same on a non-point-to-point link
    (rtnetlink(7)), and the broadcast address up to a /30."""
    payload = (
        ifaddrmsg(index, interface.network.prefixlen)
        + attr(IFA_LOCAL, interface.ip.packed)
        + attr(IFA_ADDRESS, interface.ip.packed)
    )
    if interface.network.prefixlen < 31:
        payload += attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
    return payload


def default_route_payload(gateway: IPv4Address, oif: int | None = None) -> bytes:
    """RTM_NEWROUTE of ``default via GATEWAY [dev OIF]`` in the main table."""
    return (
        rtmsg()
        + attr(RTA_GATEWAY, gateway.packed)
        + (attr_u32(RTA_OIF, oif) if oif is not None else b"")
    )


def get_link_payload(link: int | str) -> bytes:
    index, name_attr = link_ref(link)
    return ifinfomsg(index) + name_attr + attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)


# -- decoding ---------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    type: int
    flags: int
    seq: int
    payload: bytes


def parse_messages(data: bytes) -> Iterator[Message]:
    """The messages of one datagram (a dump packs several into each)."""
    for _end, msg in parse_messages_at(data):
        yield msg


def parse_messages_at(data: bytes) -> Iterator[tuple[int, Message]]:
    """Each message of a datagram with the offset where the next one starts."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise ValueError(f"truncated netlink message at byte {offset}")
        payload = data[offset + _NLMSGHDR.size : offset + length]
        offset += _align(length)
        yield offset, Message(msg_type, flags, seq, payload)


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes by type (flags masked off); the last of a repeated type wins."""
    attrs: dict[int, bytes] = {}
    while offset + _NLATTR.size <= len(data):
        length, attr_type = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            break
        attrs[attr_type & NLA_TYPE_MASK] = data[offset + _NLATTR.size : offset + length]
        offset += _align(length)
    return attrs


def parse_error(msg: Message) -> tuple[int, str]:
    """An NLMSG_ERROR's errno (0 for an ack) and the kernel's extended message.

    netlink(7): the payload is ``struct nlmsgerr`` — a negative errno, then our
    request's header (only the header when NLM_F_CAPPED), then with
    NLM_F_ACK_TLVS the extended-ack attributes.
    """
    (error,) = ERRNO.unpack_from(msg.payload)
    text = ""
    if msg.flags & NLM_F_ACK_TLVS:
        if msg.flags & NLM_F_CAPPED:
            tlv_offset = ERRNO.size + _NLMSGHDR.size
        else:
            (orig_len,) = struct.unpack_from("=I", msg.payload, ERRNO.size)
            tlv_offset = ERRNO.size + _align(orig_len)
        raw = parse_attrs(msg.payload, tlv_offset).get(NLMSGERR_ATTR_MSG, b"")
        text = raw.rstrip(b"\0").decode(errors="replace")
    return -error, text


def error(operation: str, err: int, kernel_text: str = "") -> OSError:
    """OSError(errno, "operation: strerror (kernel text)"), as runtime/libc.py words them."""
    detail = f" ({kernel_text})" if kernel_text else ""
    return OSError(err, f"{operation}: {os.strerror(err)}{detail}")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mtu: int
    mac: str | None
    flags: int
    master: int | None
    kind: str | None
    #: IFLA_LINK: for a veth, the index of its peer (in the peer's namespace).
    link: int | None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


def parse_link(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload, _IFINFOMSG.size)
    kind = None
    if IFLA_LINKINFO in attrs:
        raw_kind = parse_attrs(attrs[IFLA_LINKINFO]).get(IFLA_INFO_KIND)
        kind = raw_kind.rstrip(b"\0").decode() if raw_kind is not None else None
    return Link(
        index=index,
        name=attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
        mtu=_U32.unpack(attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0,
        mac=format_mac(attrs[IFLA_ADDRESS]) if IFLA_ADDRESS in attrs else None,
        flags=flags,
        master=_U32.unpack(attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else None,
        kind=kind,
        link=_U32.unpack(attrs[IFLA_LINK])[0] if IFLA_LINK in attrs else None,
    )


@dataclass(frozen=True)
class Route:
    """An IPv4 route: ``dst`` 0.0.0.0/0 for a default route."""

    dst: IPv4Network
    gateway: IPv4Address | None
    oif: int | None
    table: int


def parse_route(payload: bytes) -> Route:
    family, dst_len, _src, _tos, table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(payload)
    attrs = parse_attrs(payload, _RTMSG.size)
    if family != socket.AF_INET:
        raise ValueError(f"not an IPv4 route (family {family})")
    dst = IPv4Address(attrs[RTA_DST]) if RTA_DST in attrs else IPv4Address(0)
    return Route(
        dst=IPv4Network((dst, dst_len)),
        gateway=IPv4Address(attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else None,
        oif=_U32.unpack(attrs[RTA_OIF])[0] if RTA_OIF in attrs else None,
        # rtnetlink(7): rtm_table is 8 bits; RTA_TABLE carries ids above 255.
        table=_U32.unpack(attrs[RTA_TABLE])[0] if RTA_TABLE in attrs else table,
    )
