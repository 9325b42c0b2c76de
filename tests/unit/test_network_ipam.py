"""runtime/network/ipam.py: subnets, gateways, allocation, default pools, MACs (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from runtime.errors import Conflict, InvalidArgument
from runtime.network import ipam
from runtime.network.rtnl import Route


def test_the_gateway_defaults_to_the_first_host_address() -> None:
    subnet = ipam.Subnet.of("172.17.0.0/16")
    assert subnet.gateway == IPv4Address("172.17.0.1")
    assert subnet.bridge_interface == IPv4Interface("172.17.0.1/16")
    assert subnet.interface(IPv4Address("172.17.0.2")) == IPv4Interface("172.17.0.2/16")


def test_a_given_gateway_must_be_a_host_of_the_subnet() -> None:
    assert ipam.Subnet.of("10.9.0.0/24", "10.9.0.254").gateway == IPv4Address("10.9.0.254")
    for bad in ("10.9.1.1", "10.9.0.0", "10.9.0.255", "nonsense"):
        with pytest.raises(InvalidArgument) as info:
            ipam.Subnet.of("10.9.0.0/24", bad)
        assert info.value.field == "gateway"


@pytest.mark.parametrize("bad", ["10.9.0.1/24", "10.9.0.0/31", "10.9.0.0/32", "300.0.0.0/8"])
def test_a_subnet_with_host_bits_or_no_room_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ipam.Subnet.of(bad)
    assert info.value.field == "subnet"


def test_allocation_takes_the_lowest_free_address_past_the_gateway() -> None:
    pool = ipam.AddressPool(ipam.Subnet.of("172.18.0.0/16"))
    assert [pool.allocate() for _ in range(3)] == [
        IPv4Address("172.18.0.2"),
        IPv4Address("172.18.0.3"),
        IPv4Address("172.18.0.4"),
    ]


def test_the_pool_is_rebuilt_from_the_records_and_a_released_address_comes_back() -> None:
    subnet = ipam.Subnet.of("172.18.0.0/16")
    records = ["172.18.0.2", "172.18.0.3", "172.18.0.5"]
    pool = ipam.AddressPool(subnet, records)
    assert pool.allocate() == IPv4Address("172.18.0.4")
    assert pool.allocate() == IPv4Address("172.18.0.6")
    pool.release("172.18.0.3")
    pool.release("172.18.0.3")  # idempotent
    assert pool.allocate() == IPv4Address("172.18.0.3")
    assert pool.in_use == {IPv4Address(f"172.18.0.{n}") for n in (2, 3, 4, 5, 6)}


def test_a_gateway_other_than_the_first_address_is_skipped() -> None:
    pool = ipam.AddressPool(ipam.Subnet.of("10.0.0.0/30", "10.0.0.1"))
    assert pool.allocate() == IPv4Address("10.0.0.2")
    pool = ipam.AddressPool(ipam.Subnet.of("10.0.0.0/30", "10.0.0.2"))
    assert pool.allocate() == IPv4Address("10.0.0.1")


def test_a_full_subnet_says_so() -> None:
    pool = ipam.AddressPool(ipam.Subnet.of("10.0.0.0/29"))
    assert len([pool.allocate() for _ in range(5)]) == 5  # 8 - network, broadcast, gateway
    with pytest.raises(ipam.PoolExhausted, match="no free address left in 10.0.0.0/29"):
        pool.allocate()
    assert isinstance(ipam.PoolExhausted("x"), Conflict)


def test_reserving_a_taken_address_the_gateway_or_an_outsider_is_refused() -> None:
    pool = ipam.AddressPool(ipam.Subnet.of("10.0.0.0/24"), ["10.0.0.7"])
    with pytest.raises(ipam.AddressInUse, match="another container"):
        pool.reserve("10.0.0.7")
    with pytest.raises(ipam.AddressInUse, match="the gateway"):
        pool.reserve("10.0.0.1")
    with pytest.raises(InvalidArgument, match="not a host address of 10.0.0.0/24"):
        pool.reserve("10.0.1.7")
    with pytest.raises(InvalidArgument):
        pool.reserve("10.0.0.255")
    assert pool.reserve("10.0.0.8") == IPv4Address("10.0.0.8")
    # Records that disagree (an address twice) are not silently merged.
    with pytest.raises(ipam.AddressInUse):
        ipam.AddressPool(ipam.Subnet.of("10.0.0.0/24"), ["10.0.0.7", "10.0.0.7"])


def test_the_mac_is_02_42_and_the_address() -> None:
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert ipam.mac_for(IPv4Address("10.255.1.254")) == "02:42:0a:ff:01:fe"


def test_default_pools_follow_dockers_order() -> None:
    pools = ipam.DEFAULT_POOLS
    assert pools[0] == IPv4Network("172.17.0.0/16")
    assert pools[1] == IPv4Network("172.18.0.0/16")
    assert pools[14] == IPv4Network("172.31.0.0/16")
    assert pools[15] == IPv4Network("192.168.0.0/20")
    assert pools[-1] == IPv4Network("192.168.240.0/20")
    assert len(pools) == 31


def test_pick_skips_existing_networks_and_host_routes() -> None:
    taken = [
        ipam.Taken(IPv4Network("172.17.0.0/16"), "network 'bridge'"),
        ipam.Taken(IPv4Network("172.18.5.0/24"), "the host's route 172.18.5.0/24 dev eth1"),
    ]
    assert ipam.pick_subnet([]) == IPv4Network("172.17.0.0/16")
    assert ipam.pick_subnet(taken) == IPv4Network("172.19.0.0/16")
    # A wide route (172.16.0.0/12 covers all the 172 pools) moves on to 192.168.
    wide = [ipam.Taken(IPv4Network("172.16.0.0/12"), "vpn")]
    assert ipam.pick_subnet(wide) == IPv4Network("192.168.0.0/20")


def test_pick_fails_when_every_pool_is_taken() -> None:
    everything = [
        ipam.Taken(IPv4Network("172.16.0.0/12"), "a"),
        ipam.Taken(IPv4Network("192.168.0.0/16"), "b"),
    ]
    with pytest.raises(ipam.PoolExhausted, match="give a subnet"):
        ipam.pick_subnet(everything)


def test_a_clash_names_what_it_overlaps() -> None:
    taken = [
        ipam.Taken(IPv4Network("10.0.0.0/8"), "the host's route 10.0.0.0/8 via 192.0.2.1 dev eth0"),
        ipam.Taken(IPv4Network("172.17.0.0/16"), "network 'bridge'"),
    ]
    ipam.check_subnet(IPv4Network("172.18.0.0/16"), taken)
    with pytest.raises(ipam.SubnetOverlap) as info:
        ipam.check_subnet(IPv4Network("10.1.0.0/16"), taken)
    assert str(info.value) == (
        "subnet 10.1.0.0/16 overlaps the host's route 10.0.0.0/8 via 192.0.2.1 dev eth0"
    )
    with pytest.raises(ipam.SubnetOverlap, match="network 'bridge'"):
        ipam.check_subnet(IPv4Network("172.0.0.0/8"), taken)


def test_routes_become_taken_subnets_except_the_default_route() -> None:
    routes = [
        Route(IPv4Network("0.0.0.0/0"), IPv4Address("192.0.2.1"), 2, 254),
        Route(IPv4Network("192.0.2.0/24"), None, 2, 254),
        Route(IPv4Network("10.0.0.0/8"), IPv4Address("192.0.2.9"), 7, 254),
    ]
    assert ipam.routes_taken(routes, {2: "eth0"}) == [
        ipam.Taken(IPv4Network("192.0.2.0/24"), "the host's route 192.0.2.0/24 dev eth0"),
        ipam.Taken(IPv4Network("10.0.0.0/8"), "the host's route 10.0.0.0/8 via 192.0.2.9 dev #7"),
    ]


def test_an_ip_range_bounds_allocation_and_auxiliary_addresses_are_never_handed_out() -> None:
    subnet = ipam.Subnet.of("10.9.0.0/24")
    pool = ipam.AddressPool(subnet, ip_range="10.9.0.0/29", reserved=["10.9.0.2"])
    got = [pool.allocate() for _ in range(5)]  # .1 the gateway, .2 reserved, .0 the network's
    assert got == [IPv4Address(f"10.9.0.{n}") for n in (3, 4, 5, 6, 7)]
    with pytest.raises(ipam.PoolExhausted, match="10.9.0.0/29"):
        pool.allocate()
    # A requested address may lie outside the range, but not on a reserved one.
    assert pool.reserve("10.9.0.200") == IPv4Address("10.9.0.200")
    with pytest.raises(ipam.AddressInUse, match="auxiliary"):
        pool.reserve("10.9.0.2")
    with pytest.raises(InvalidArgument) as bad:
        pool.reserve("10.8.0.9", "ipv4_address")
    assert bad.value.field == "ipv4_address"


def test_a_range_starts_at_its_own_first_address() -> None:
    pool = ipam.AddressPool(
        ipam.Subnet.of("172.28.0.0/16", "172.28.5.254"), ip_range="172.28.5.0/24"
    )
    assert pool.allocate() == IPv4Address("172.28.5.0")  # a host of the /16, as Docker's


@pytest.mark.parametrize(
    ("ip_range", "aux", "field"),
    [
        ("10.9.1.0/24", {}, "ip_range"),
        ("10.9.0.1/25", {}, "ip_range"),
        ("nope", {}, "ip_range"),
        (None, {"a": "10.9.1.1"}, "aux_addresses.a"),
        (None, {"b": "10.9.0.255"}, "aux_addresses.b"),
        (None, {"c": "x"}, "aux_addresses.c"),
    ],
)
def test_ranges_and_auxiliary_addresses_are_checked(
    ip_range: str | None, aux: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidArgument) as bad:
        ipam.check_ip_range(ipam.Subnet.of("10.9.0.0/24"), ip_range, aux)
    assert bad.value.field == field
    assert ipam.check_ip_range(ipam.Subnet.of("10.9.0.0/24"), "10.9.0.128/25", {"a": "10.9.0.5"})
