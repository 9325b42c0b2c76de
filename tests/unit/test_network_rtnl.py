"""runtime/network/rtnl.py without root: the bytes of each request and the
decoding of replies (the request loop is test_network_netlink.py's)."""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from runtime.network import netlink as nl
from runtime.network import rtnl

HDR = struct.Struct("=IHHII")
IFINFO = struct.Struct("=BxHiII")


def u32(raw: bytes) -> int:
    return int(struct.unpack("=I", raw)[0])


def cstr(raw: bytes) -> str:
    assert raw.endswith(b"\0")
    return raw[:-1].decode()


def test_header_and_attributes_are_aligned_to_4_bytes() -> None:
    assert rtnl.attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    assert rtnl.attr_u32(4, 1500) == struct.pack("=HHI", 8, 4, 1500)
    msg = rtnl.header(rtnl.RTM_NEWLINK, rtnl.NLM_F_REQUEST, 7, b"x" * 16)
    assert HDR.unpack_from(msg) == (32, rtnl.RTM_NEWLINK, rtnl.NLM_F_REQUEST, 7, 0)
    (parsed,) = rtnl.parse_messages(msg)
    assert (parsed.type, parsed.seq, parsed.payload) == (rtnl.RTM_NEWLINK, 7, b"x" * 16)


def test_nested_attributes_carry_the_nested_flag_and_parse_back() -> None:
    raw = rtnl.nested(rtnl.IFLA_LINKINFO, rtnl.attr_str(rtnl.IFLA_INFO_KIND, "veth"))
    length, attr_type = struct.unpack_from("=HH", raw)
    assert attr_type == rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED
    assert length == len(raw)
    outer = rtnl.parse_attrs(raw)
    assert cstr(rtnl.parse_attrs(outer[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_KIND]) == "veth"


def test_a_bridge_request_names_kind_mtu_mac_and_up() -> None:
    payload = rtnl.bridge_payload("mybr0", "02:00:00:00:00:01", mtu=1400)
    assert IFINFO.unpack_from(payload) == (socket.AF_UNSPEC, 0, 0, rtnl.IFF_UP, rtnl.IFF_UP)
    attrs = rtnl.parse_attrs(payload, IFINFO.size)
    assert cstr(attrs[rtnl.IFLA_IFNAME]) == "mybr0"
    assert u32(attrs[rtnl.IFLA_MTU]) == 1400
    assert attrs[rtnl.IFLA_ADDRESS] == bytes.fromhex("020000000001")
    assert cstr(rtnl.parse_attrs(attrs[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_KIND]) == "bridge"


def test_a_veth_request_puts_the_peer_in_its_namespace_and_the_host_end_on_the_bridge() -> None:
    payload = rtnl.veth_payload(
        "veth1234567",
        peer_name="eth0",
        peer_netns_fd=42,
        peer_mac="02:42:ac:11:00:02",
        mtu=1450,
        master=3,
    )
    # The host end: up, MTU, master.
    assert IFINFO.unpack_from(payload)[3:] == (rtnl.IFF_UP, rtnl.IFF_UP)
    host = rtnl.parse_attrs(payload, IFINFO.size)
    assert cstr(host[rtnl.IFLA_IFNAME]) == "veth1234567"
    assert u32(host[rtnl.IFLA_MTU]) == 1450
    assert u32(host[rtnl.IFLA_MASTER]) == 3
    assert rtnl.IFLA_NET_NS_FD not in host
    # IFLA_LINKINFO → kind veth, IFLA_INFO_DATA → VETH_INFO_PEER: an ifinfomsg
    # and the peer's own attributes.
    info = rtnl.parse_attrs(host[rtnl.IFLA_LINKINFO])
    assert cstr(info[rtnl.IFLA_INFO_KIND]) == "veth"
    peer_raw = rtnl.parse_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    assert IFINFO.unpack_from(peer_raw) == (0, 0, 0, 0, 0)  # the peer stays down
    peer = rtnl.parse_attrs(peer_raw, IFINFO.size)
    assert cstr(peer[rtnl.IFLA_IFNAME]) == "eth0"
    assert peer[rtnl.IFLA_ADDRESS] == bytes.fromhex("0242ac110002")
    assert u32(peer[rtnl.IFLA_MTU]) == 1450
    assert u32(peer[rtnl.IFLA_NET_NS_FD]) == 42
    # One queue each way on both ends: no queue to cut under the rtnl lock.
    for end in (host, peer):
        assert u32(end[rtnl.IFLA_NUM_TX_QUEUES]) == u32(end[rtnl.IFLA_NUM_RX_QUEUES]) == 1


def test_optional_veth_attributes_are_left_out() -> None:
    payload = rtnl.veth_payload("v0", peer_name="v1", up=False)
    assert IFINFO.unpack_from(payload)[3:] == (0, rtnl.IFF_UP)
    host = rtnl.parse_attrs(payload, IFINFO.size)
    queues = {rtnl.IFLA_NUM_TX_QUEUES, rtnl.IFLA_NUM_RX_QUEUES}
    assert set(host) == {rtnl.IFLA_IFNAME, rtnl.IFLA_LINKINFO, *queues}


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", " eth0"])
def test_bad_interface_names_are_refused_before_the_kernel(name: str) -> None:
    with pytest.raises(ValueError, match="not an interface name"):
        rtnl.veth_payload("veth0", peer_name=name)


@pytest.mark.parametrize("mac", ["02:42:ac:11:00", "0242ac110002", "zz:42:ac:11:00:02"])
def test_bad_macs_are_refused(mac: str) -> None:
    with pytest.raises(ValueError):
        rtnl.parse_mac(mac)


def test_random_macs_are_unicast_and_locally_administered() -> None:
    for _ in range(50):
        first = rtnl.parse_mac(nl.random_mac())[0]
        assert first & 0x03 == 0x02


def test_set_up_and_get_link_go_by_index_or_by_name() -> None:
    by_index = rtnl.set_up_payload(5)
    assert IFINFO.unpack_from(by_index) == (0, 0, 5, rtnl.IFF_UP, rtnl.IFF_UP)
    assert len(by_index) == IFINFO.size
    by_name = rtnl.set_up_payload("lo")
    assert IFINFO.unpack_from(by_name)[2] == 0
    assert cstr(rtnl.parse_attrs(by_name, IFINFO.size)[rtnl.IFLA_IFNAME]) == "lo"
    get = rtnl.parse_attrs(rtnl.get_link_payload("eth0"), IFINFO.size)
    assert u32(get[rtnl.IFLA_EXT_MASK]) == rtnl.RTEXT_FILTER_SKIP_STATS


def test_an_address_request_has_local_address_and_broadcast() -> None:
    payload = rtnl.address_payload(4, IPv4Interface("172.17.0.2/16"))
    assert struct.unpack_from("=BBBBi", payload) == (socket.AF_INET, 16, 0, 0, 4)
    attrs = rtnl.parse_attrs(payload, 8)
    assert IPv4Address(attrs[rtnl.IFA_LOCAL]) == IPv4Address("172.17.0.2")
    assert IPv4Address(attrs[rtnl.IFA_ADDRESS]) == IPv4Address("172.17.0.2")
    assert IPv4Address(attrs[rtnl.IFA_BROADCAST]) == IPv4Address("172.17.255.255")
    # A /31 has no broadcast address (RFC 3021).
    assert rtnl.IFA_BROADCAST not in rtnl.parse_attrs(
        rtnl.address_payload(4, IPv4Interface("10.0.0.0/31")), 8
    )


def test_a_default_route_request() -> None:
    payload = rtnl.default_route_payload(IPv4Address("172.17.0.1"), oif=2)
    family, dst_len, _, _, table, proto, scope, rtype, _ = struct.unpack_from("=BBBBBBBBI", payload)
    assert (family, dst_len, table, proto, scope, rtype) == (
        socket.AF_INET,
        0,
        rtnl.RT_TABLE_MAIN,
        rtnl.RTPROT_BOOT,
        rtnl.RT_SCOPE_UNIVERSE,
        rtnl.RTN_UNICAST,
    )
    attrs = rtnl.parse_attrs(payload, 12)
    assert IPv4Address(attrs[rtnl.RTA_GATEWAY]) == IPv4Address("172.17.0.1")
    assert u32(attrs[rtnl.RTA_OIF]) == 2


def link_message(index: int, name: str, **extra: bytes) -> bytes:
    payload = rtnl.ifinfomsg(index, flags=rtnl.IFF_UP) + rtnl.attr_str(rtnl.IFLA_IFNAME, name)
    payload += b"".join(extra.values())
    return payload


def test_a_link_reply_decodes() -> None:
    payload = link_message(
        7,
        "veth0",
        mtu=rtnl.attr_u32(rtnl.IFLA_MTU, 1400),
        mac=rtnl.attr(rtnl.IFLA_ADDRESS, bytes.fromhex("0242ac110002")),
        master=rtnl.attr_u32(rtnl.IFLA_MASTER, 3),
        link=rtnl.attr_u32(rtnl.IFLA_LINK, 2),
        info=rtnl.nested(rtnl.IFLA_LINKINFO, rtnl.attr_str(rtnl.IFLA_INFO_KIND, "veth")),
    )
    assert rtnl.parse_link(payload) == rtnl.Link(
        index=7,
        name="veth0",
        mtu=1400,
        mac="02:42:ac:11:00:02",
        flags=rtnl.IFF_UP,
        master=3,
        kind="veth",
        link=2,
    )
    assert rtnl.parse_link(payload).up


def test_a_route_reply_decodes_and_rta_table_wins_over_rtm_table() -> None:
    payload = (
        struct.pack("=BBBBBBBBI", socket.AF_INET, 8, 0, 0, 252, 4, 0, 1, 0)
        + rtnl.attr(rtnl.RTA_DST, IPv4Address("10.0.0.0").packed)
        + rtnl.attr(rtnl.RTA_GATEWAY, IPv4Address("192.0.2.1").packed)
        + rtnl.attr_u32(rtnl.RTA_OIF, 2)
        + rtnl.attr_u32(rtnl.RTA_TABLE, 1000)
    )
    assert rtnl.parse_route(payload) == rtnl.Route(
        IPv4Network("10.0.0.0/8"), IPv4Address("192.0.2.1"), 2, 1000
    )
    default = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
    assert rtnl.parse_route(default).dst == IPv4Network("0.0.0.0/0")


def error_message(seq: int, err: int, text: str = "", capped: bool = True) -> bytes:
    """An NLMSG_ERROR as the kernel writes it with CAP_ACK and EXT_ACK."""
    request = HDR.pack(32, rtnl.RTM_NEWLINK, 5, seq, 0)
    flags = 0
    if capped:
        flags |= rtnl.NLM_F_CAPPED
        body = struct.pack("=i", -err) + request
    else:
        body = struct.pack("=i", -err) + request + b"\0" * 16
    if text:
        flags |= rtnl.NLM_F_ACK_TLVS
        body += rtnl.attr(rtnl.NLMSGERR_ATTR_MSG, text.encode() + b"\0")
    return rtnl.header(rtnl.NLMSG_ERROR, flags, seq, body)


@pytest.mark.parametrize("capped", [True, False])
def test_an_error_reply_gives_errno_and_the_kernels_text(capped: bool) -> None:
    (msg,) = rtnl.parse_messages(error_message(1, errno.EEXIST, "Device exists", capped))
    assert rtnl.parse_error(msg) == (errno.EEXIST, "Device exists")
    (ack,) = rtnl.parse_messages(error_message(1, 0))
    assert rtnl.parse_error(ack) == (0, "")


def test_a_hairpin_request_is_a_bridge_family_setlink_with_nested_protinfo() -> None:
    payload = rtnl.hairpin_payload(7)
    family, _, index, flags, change = IFINFO.unpack_from(payload)
    assert (family, index, flags, change) == (socket.AF_BRIDGE, 7, 0, 0)
    attrs = rtnl.parse_attrs(payload, IFINFO.size)
    protinfo = attrs[rtnl.IFLA_PROTINFO]  # parse_attrs masks NLA_F_NESTED off the type
    assert rtnl.parse_attrs(protinfo) == {rtnl.IFLA_BRPORT_MODE: b"\x01"}
    raw_type = struct.unpack_from("=HH", payload, IFINFO.size)[1]
    assert raw_type == rtnl.IFLA_PROTINFO | rtnl.NLA_F_NESTED
    off = rtnl.parse_attrs(rtnl.hairpin_payload(7, on=False), IFINFO.size)[rtnl.IFLA_PROTINFO]
    assert rtnl.parse_attrs(off) == {rtnl.IFLA_BRPORT_MODE: b"\x00"}


def test_no_link_local_sets_the_ipv6_address_generation_to_none() -> None:
    payload = rtnl.no_link_local_payload("veth0")
    assert IFINFO.unpack_from(payload)[2:] == (0, 0, 0)  # by name, no flag change
    attrs = rtnl.parse_attrs(payload, IFINFO.size)
    assert cstr(attrs[rtnl.IFLA_IFNAME]) == "veth0"
    inet6 = rtnl.parse_attrs(attrs[rtnl.IFLA_AF_SPEC])[socket.AF_INET6]
    mode = rtnl.parse_attrs(inet6)[rtnl.IFLA_INET6_ADDR_GEN_MODE]
    assert mode == bytes([rtnl.IN6_ADDR_GEN_MODE_NONE])
    assert IFINFO.unpack_from(rtnl.no_link_local_payload(7))[2] == 7


def test_a_parked_veth_is_adopted_named_and_set_up_by_index() -> None:
    adopt = rtnl.adopt_payload(5, 1450, 3)
    _family, _type, index, flags, change = IFINFO.unpack_from(adopt)
    assert (index, flags & rtnl.IFF_UP, change & rtnl.IFF_UP) == (5, rtnl.IFF_UP, rtnl.IFF_UP)
    attrs = rtnl.parse_attrs(adopt, IFINFO.size)
    assert u32(attrs[rtnl.IFLA_MTU]) == 1450 and u32(attrs[rtnl.IFLA_MASTER]) == 3
    assert rtnl.IFLA_IFNAME not in attrs  # no rename: it waits for a grace period
    alt = rtnl.altname_payload(5, "vethabcdef12345")
    assert IFINFO.unpack_from(alt)[2] == 5
    props = rtnl.parse_attrs(rtnl.parse_attrs(alt, IFINFO.size)[rtnl.IFLA_PROP_LIST])
    assert cstr(props[rtnl.IFLA_ALT_IFNAME]) == "vethabcdef12345"
    with pytest.raises(ValueError):
        rtnl.altname_payload(5, "x" * 16)
    settings = rtnl.link_settings_payload(7, "02:42:0a:01:00:02", 1450)
    attrs = rtnl.parse_attrs(settings, IFINFO.size)
    assert rtnl.format_mac(attrs[rtnl.IFLA_ADDRESS]) == "02:42:0a:01:00:02"
    assert u32(attrs[rtnl.IFLA_MTU]) == 1450 and IFINFO.unpack_from(settings)[2] == 7
    assert IFINFO.unpack_from(settings)[4] == 0  # flags untouched
    up = IFINFO.unpack_from(rtnl.link_settings_payload(7, "02:42:0a:01:00:02", 1450, up=True))
    assert up[3] & rtnl.IFF_UP and up[4] & rtnl.IFF_UP  # flags, change
