"""runtime/network/endpoints.py: the live endpoints of each network in
memory: addresses taken and given back, links, a rebuild from records."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from runtime.network.attachment import Attachment, EndpointOptions
from runtime.network.endpoints import Endpoints
from runtime.network.ipam import AddressInUse, PoolExhausted
from runtime.records import ContainerRecord, NetworkRecord
from runtime.spec import ContainerSpec

NET = NetworkRecord("a", "f" * 64, "10.9.0.0/29", "10.9.0.1", "mdk-fffffffffff", False, "t")


def asked(address: str = "", links: tuple[str, ...] = ()) -> Attachment:
    return Attachment(
        mode="bridge", network="a", options=EndpointOptions(ipv4_address=address, links=links)
    )


def live(cid: str, address: str, links: tuple[str, ...] = ()) -> ContainerRecord:
    net = Attachment(
        mode="bridge",
        network="a",
        address=f"{address}/29",
        options=EndpointOptions(links=links),
    )
    spec = ContainerSpec(command=("true",), hostname="h", network=net)
    return ContainerRecord(cid, f"c{cid}", "running", spec, "t")  # type: ignore[arg-type]


def test_take_gives_the_lowest_free_address_and_drop_gives_it_back() -> None:
    index = Endpoints()
    taken = [str(index.take(NET, cid, asked())[1]) for cid in "123"]
    assert taken == ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
    index.drop("a", "2", "10.9.0.9")  # not what it holds: kept
    assert index.holder("a", "10.9.0.3") == "2"
    index.drop("a", "2", "10.9.0.3")
    assert index.holder("a", "10.9.0.3") is None
    assert str(index.take(NET, "4", asked())[1]) == "10.9.0.3"
    assert str(index.take(NET, "5", asked())[1]) == "10.9.0.5"
    assert str(index.take(NET, "6", asked())[1]) == "10.9.0.6"
    with pytest.raises(PoolExhausted):
        index.take(NET, "7", asked())
    assert index.holding("6") == [("a", "10.9.0.6")]


def test_a_container_takes_its_own_again_and_keeps_it_when_refused() -> None:
    index = Endpoints()
    index.take(NET, "1", asked())
    index.take(NET, "2", asked(links=("x:y",)))
    assert str(index.take(NET, "2", asked("10.9.0.3", links=("x:y",)))[1]) == "10.9.0.3"
    with pytest.raises(AddressInUse, match="10.9.0.2"):
        index.take(NET, "2", asked("10.9.0.2"))
    assert index.holder("a", "10.9.0.3") == "2"  # what it held before the refusal
    assert index.linked_by("a", "9", ["x"]) == ["y"]


def test_rebuild_counts_the_live_records_and_their_links() -> None:
    index = Endpoints()
    index.take(NET, "stale", asked())  # a launch whose record was never written
    index.rebuild(
        [NET],
        [
            live("1", "10.9.0.3", links=("web:db", "cache")),
            live("2", "10.9.0.3"),  # held twice (an old record): the first keeps it
            live("3", "10.99.0.3"),  # not this subnet's: ignored
        ],
    )
    assert index.holder("a", "10.9.0.2") is None
    assert index.holder("a", "10.9.0.3") == "1"
    assert index.linked_by("a", "7", ["web", "7" * 12]) == ["db"]
    assert index.linked_by("a", "7", ["cache"]) == ["cache"]
    assert index.linked_by("a", "1", ["web"]) == []  # its own links name others
    assert index.linked_by("other", "7", ["web"]) == []
    assert str(index.take(NET, "4", asked())[1]) == "10.9.0.2"
    index.forget_network("a")
    assert not index.known("a") and index.holder("a", "10.9.0.2") is None


def test_the_pool_starts_after_the_addresses_known_taken() -> None:
    """A pool kept across launches walks no address it knows is taken."""
    index = Endpoints()
    for cid in range(4):
        index.take(NET, str(cid), asked())
    index.drop("a", "1", "10.9.0.3")
    assert index.take(NET, "9", asked())[1] == IPv4Address("10.9.0.3")


def test_the_ports_promised_are_held_with_the_address_and_rebuilt() -> None:
    from runtime.network.attachment import PortMapping

    index = Endpoints()
    index.take(NET, "1", asked())
    port = (PortMapping(80, 8080),)
    index.hold_ports("a", "1", port)
    index.hold_ports("a", "2", (PortMapping(81, 8081),))  # holds no address: not promised
    assert index.promised() == list(port)
    index.drop("a", "1", "10.9.0.2")
    assert index.promised() == []
    record = live("3", "10.9.0.4")
    assert record.spec.network is not None
    spec = replace(record.spec, network=replace(record.spec.network, ports=port))
    index.rebuild([NET], [replace(record, spec=spec)])
    assert index.promised() == list(port)
