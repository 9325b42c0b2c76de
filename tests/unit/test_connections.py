"""runtime/connections.py: the interface a connect gets, where an endpoint
is recorded and how it leaves, and the refusals (no root: fakes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runtime.connections import _check_connectable, _free_ifname, _with, _without
from runtime.errors import Conflict, InvalidArgument
from runtime.network.attachment import (
    BRIDGE,
    HOST,
    Attachment,
    EndpointOptions,
    check_mac,
    veth_name,
)
from runtime.records import ContainerRecord
from runtime.spec import ContainerSpec, Status

CID = "c" * 64


def attached(network: str, ifname: str, address: str) -> Attachment:
    return Attachment(
        mode=BRIDGE, network=network, address=address, ifname=ifname, etc_dir="/etc-dir"
    )


FIRST = attached("a", "eth0", "10.1.0.2/24")
SECOND = attached("b", "eth1", "10.2.0.2/24")


def record(spec: ContainerSpec) -> ContainerRecord:
    return ContainerRecord(CID, "box", Status.running, spec, "2026-01-01T00:00:00Z")


def test_the_lowest_free_interface_number_is_taken() -> None:
    spec = ContainerSpec(command=("true",), hostname="box", network=FIRST, endpoints=(SECOND,))
    assert _free_ifname(spec) == "eth2"
    left = _without(spec, FIRST)
    assert _free_ifname(left) == "eth0"
    assert _free_ifname(_without(spec, SECOND)) == "eth1"


def test_the_first_network_keeps_its_place_when_left_and_takes_eth0_back() -> None:
    spec = ContainerSpec(command=("true",), hostname="box", network=FIRST, endpoints=(SECOND,))
    left = _without(spec, FIRST)
    assert left.network is not None and not left.network.connected
    assert left.network.etc_dir == "/etc-dir" and left.attachments() == (SECOND,)
    back = _with(left, replace(FIRST, network="c"))
    assert back.network is not None and back.network.network == "c"
    assert [a.network for a in back.attachments()] == ["c", "b"]
    more = _with(spec, attached("d", "eth2", "10.4.0.2/24"))
    assert [a.ifname for a in more.attachments()] == ["eth0", "eth1", "eth2"]
    assert _without(more, SECOND).endpoints == (more.endpoints[1],)


def test_none_host_and_a_second_connect_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="'none'"):
        _check_connectable(record(ContainerSpec(command=("true",), hostname="box")), "a")
    host = ContainerSpec(
        command=("true",), hostname="box", network=Attachment(mode=HOST, network=HOST)
    )
    with pytest.raises(InvalidArgument, match="'host'"):
        _check_connectable(record(host), "a")
    spec = ContainerSpec(command=("true",), hostname="box", network=FIRST)
    with pytest.raises(InvalidArgument):
        _check_connectable(record(spec), "none")
    with pytest.raises(Conflict, match="already connected"):
        _check_connectable(record(spec), "a")
    _check_connectable(record(spec), "b")


def test_host_end_names_fit_ifnamsiz_and_differ_per_interface() -> None:
    names = {veth_name(CID), veth_name(CID, "1"), veth_name(CID, "12")}
    assert len(names) == 3 and all(len(n) <= 15 for n in names)


def test_endpoint_options_are_checked() -> None:
    assert check_mac("02:AA:bb:00:00:01") == "02:aa:bb:00:00:01"
    for bad in ("01:00:5e:00:00:01", "02:42", "zz:00:00:00:00:00"):
        with pytest.raises(ValueError):
            check_mac(bad)
    with pytest.raises(ValueError):
        EndpointOptions(ipv4_address="10.1.0.300")
    with pytest.raises(ValueError):
        EndpointOptions(link_local_ips=("fe80::1",))
    with pytest.raises(ValueError, match="container"):
        EndpointOptions(links=("a:b:c",))
    assert EndpointOptions(mac_address="02:AA:00:00:00:01").mac_address == "02:aa:00:00:00:01"
