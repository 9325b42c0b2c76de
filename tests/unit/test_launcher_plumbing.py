"""runtime/launcher/plumbing.py with netlink faked: ports held or refused,
the bridge made on first use, the veth, eth0 configured from a socket in the
child's namespace, hairpin with ports, one retry."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.launcher import plumbing
from runtime.launcher.protocol import ErrorKind, RequestError
from runtime.network import netlink
from runtime.network.attachment import Attachment, PortMapping

NET = Attachment(
    mode="bridge",
    network="a",
    bridge="mdk-a",
    address="10.1.0.2/24",
    gateway="10.1.0.1",
    mac="02:42:0a:01:00:02",
    veth="vethabc",
)


class FakeNetlink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.links: dict[str, int] = {}
        self.fail_veth = 0
        #: False: a kernel that does not echo the new link (before 6.2).
        self.echo = True

    def get_link(self, nl: object, name: str) -> Any:
        self.calls.append(("get_link", name))
        if name not in self.links:
            raise OSError(errno.ENODEV, "no such device")
        return SimpleNamespace(index=self.links[name], mtu=1500)

    def create_bridge(self, nl: object, name: str, mtu: int | None = None) -> Any:
        self.calls.append(("create_bridge", name, mtu))
        self.links[name] = 10 + len(self.links)
        return SimpleNamespace(index=self.links[name], mtu=1500)

    def add_address(self, nl: object, index: int, interface: object) -> None:
        self.calls.append(("add_address", index, str(interface)))

    def create_veth(self, nl: object, name: str, **kw: Any) -> Any:
        self.calls.append(("create_veth", name, kw["peer_name"], kw["peer_mac"], kw["master"]))
        if self.fail_veth:
            self.fail_veth -= 1
            raise OSError(errno.EINVAL, "create veth: Invalid argument")
        self.links[name] = 99
        self.links[kw["peer_name"]] = 7  # looked up inside when not echoed
        return SimpleNamespace(index=99, link=2) if self.echo else None

    def open_in_namespace(self, fd: int) -> Any:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("net:")
        self.calls.append(("open_in_namespace",))
        return contextlib.nullcontext("inside")

    def configure_link(self, nl: object, index: int, interface: object, gateway: object) -> None:
        assert nl == "inside"
        self.calls.append(("configure_link", index, str(interface), str(gateway)))

    def set_hairpin(self, nl: object, index: int) -> None:
        self.calls.append(("set_hairpin", index))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNetlink:
    fake = FakeNetlink()
    names = ("get_link", "create_bridge", "add_address", "create_veth", "set_hairpin")
    for name in (*names, "open_in_namespace", "configure_link"):
        monkeypatch.setattr(netlink, name, getattr(fake, name))
    monkeypatch.setattr(
        plumbing, "route_localnet", lambda bridge: fake.calls.append(("localnet", bridge))
    )
    return fake


def plumber() -> plumbing.Plumber:
    p = plumbing.Plumber()
    p._nl = object()  # type: ignore[assignment]  # never used by the fakes
    return p


def test_the_bridge_is_made_once_then_each_veth_goes_on_it(fake: FakeNetlink) -> None:
    p = plumber()
    p.plug(os.getpid(), NET)
    p.plug(os.getpid(), NET)
    assert fake.calls == [
        ("get_link", "mdk-a"),
        ("create_bridge", "mdk-a", 1500),
        ("add_address", 10, "10.1.0.1/24"),
        ("localnet", "mdk-a"),
        ("create_veth", "vethabc", "eth0", "02:42:0a:01:00:02", 10),
        ("open_in_namespace",),
        ("configure_link", 2, "10.1.0.2/24", "10.1.0.1"),  # the echoed peer's index
        ("create_veth", "vethabc", "eth0", "02:42:0a:01:00:02", 10),
        ("open_in_namespace",),
        ("configure_link", 2, "10.1.0.2/24", "10.1.0.1"),
    ]


def test_published_ports_put_the_port_in_hairpin_mode(fake: FakeNetlink) -> None:
    plumber().plug(os.getpid(), Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 1),)}))
    # The echoed host end's index: no lookup before the hairpin.
    assert fake.calls[-2:] == [
        ("configure_link", 2, "10.1.0.2/24", "10.1.0.1"),
        ("set_hairpin", 99),
    ]


def test_without_the_kernels_echo_the_links_are_looked_up(fake: FakeNetlink) -> None:
    fake.echo = False
    plumber().plug(os.getpid(), Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 1),)}))
    assert fake.calls[-5:] == [
        ("open_in_namespace",),
        ("get_link", "eth0"),  # inside the child's namespace
        ("configure_link", 7, "10.1.0.2/24", "10.1.0.1"),
        ("get_link", "vethabc"),
        ("set_hairpin", 99),
    ]


def test_a_stale_bridge_is_looked_up_again_once(fake: FakeNetlink) -> None:
    p = plumber()
    p.plug(os.getpid(), NET)
    fake.calls.clear()
    fake.fail_veth = 1
    p.plug(os.getpid(), NET)
    assert [c[0] for c in fake.calls] == [
        "create_veth",
        "get_link",
        "add_address",
        "localnet",
        "create_veth",
        "open_in_namespace",
        "configure_link",
    ]
    fake.fail_veth = 2
    with pytest.raises(RequestError) as failed:
        p.plug(os.getpid(), NET)
    assert failed.value.kind is ErrorKind.FAILED and "network a" in str(failed.value)


def test_ports_are_held_all_or_none_and_a_clash_is_invalid_state() -> None:
    p = plugged = plumbing.Plumber()  # one holder: a clash leaves nothing held
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        clash = Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 0), PortMapping(81, port))})
        with pytest.raises(RequestError) as refused:
            p.hold_ports("c1", clash)
        assert refused.value.kind is ErrorKind.INVALID_STATE and str(port) in str(refused.value)
        assert p.ports.held("c1") == []
    ok = Attachment(**{**NET.__dict__, "ports": (PortMapping(80, port),)})
    plugged.hold_ports("c1", ok)
    with socket.socket() as again, pytest.raises(OSError):
        again.bind(("127.0.0.1", port))
    plugged.release("c1")
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
    nowhere = Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 0, "tcp", "192.0.2.1"),)})
    with pytest.raises(RequestError) as bad:
        p.hold_ports("c2", nowhere)
    assert bad.value.kind is ErrorKind.FAILED and "host_ip" in str(bad.value)


class Inside:
    """A netlink socket in a parked child's namespace."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_parked_veth_goes_on_the_last_claims_bridge_and_eth0_is_configured_at_the_claim(
    fake: FakeNetlink, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []
    insides: list[Inside] = []

    def create_veth(nl: object, name: str, **kw: Any) -> Any:
        made.append({"name": name, **kw})
        if kw.get("master") == 66:
            raise OSError(errno.ENODEV, "create veth: No such device")
        return SimpleNamespace(index=41, link=3)

    def open_in_namespace(fd: int) -> Inside:
        insides.append(Inside())
        return insides[-1]

    monkeypatch.setattr(netlink, "create_veth", create_veth)
    monkeypatch.setattr(netlink, "open_in_namespace", open_in_namespace)
    monkeypatch.setattr(netlink, "adopt_veth", lambda nl, *a: fake.calls.append(("adopt_veth", *a)))
    monkeypatch.setattr(
        netlink, "quiet_parked", lambda nl, index: fake.calls.append(("quiet", index))
    )

    def configure(nl: Inside, *args: Any) -> None:
        assert not nl.closed
        fake.calls.append(("configure_parked", *map(str, args[:-1]), args[-1]))

    monkeypatch.setattr(netlink, "configure_parked", configure)
    p = plumber()
    # Before any claim: down, on no bridge; eth0 quiet (down) from inside.
    first = p.park(os.getpid())
    veth = made[0]
    assert veth["name"].startswith(plumbing.PARKED_PREFIX) and len(veth["name"]) <= 15
    assert (veth["peer_name"], veth["up"]) == ("eth0", False)
    assert "master" not in veth and "peer_mac" not in veth
    assert (first.host_index, first.peer_index, first.bridge) == (41, 3, None)
    assert fake.calls == [("quiet", 3)] and [i.closed for i in insides] == [False]  # kept

    p.plug_parked(first, Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 1),)}))
    assert fake.calls[-3:] == [
        ("adopt_veth", 41, "vethabc", 1500, 10),
        ("set_hairpin", 41),
        ("configure_parked", "3", "10.1.0.2/24", "10.1.0.1", NET.mac, "1500", ()),
    ]
    assert insides[0].closed

    # After a claim: up on its bridge, sized as it; a new name each time.
    second = p.park(os.getpid())
    assert (made[1]["master"], made[1]["mtu"], made[1].get("up", True)) == (10, 1500, True)
    assert made[1]["name"] != veth["name"] and second.bridge == NET.bridge
    # A bridge gone meanwhile: parked on none, and forgotten until a claim.
    p._bridges[NET.bridge] = (66, 1500)
    third = p.park(os.getpid())
    assert [m.get("master") for m in made[2:]] == [66, None] and third.bridge is None
    assert p.park(os.getpid()).bridge is None and "master" not in made[-1]
    # Released in this turn, parked on its bridge, no ports: eth0 first,
    # the name (with adopt_veth's no-ops) after the joined byte.
    p._bridges[NET.bridge] = (10, 1500)  # seen again meanwhile
    calls = len(fake.calls)
    named = p.plug_parked(second, NET, defer=True)
    assert [c[0] for c in fake.calls[calls:]] == ["configure_parked"] and insides[1].closed
    assert named is not None
    named()
    assert fake.calls[-1] == ("adopt_veth", 41, "vethabc", 1500, 10)
    # A created one (started later), or another bridge: named before.
    elsewhere = plumbing.Parked(41, 3, Inside(), "x")  # type: ignore[arg-type]
    for parked, defer in ((p.park(os.getpid()), False), (elsewhere, True)):
        calls = len(fake.calls)
        assert p.plug_parked(parked, NET, defer=defer) is None
        assert [c[0] for c in fake.calls[calls:]] == ["adopt_veth", "configure_parked"]


def test_a_parked_veth_that_cannot_be_plugged_fails_the_launch(
    fake: FakeNetlink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(nl: object, *args: Any) -> None:
        fake.calls.append(("adopt_veth",))
        raise OSError(errno.ENODEV, "adopt: No such device")

    monkeypatch.setattr(netlink, "adopt_veth", refuse)
    inside = Inside()
    parked = plumbing.Parked(41, 3, inside)  # type: ignore[arg-type]
    with pytest.raises(RequestError) as failed:
        plumber().plug_parked(parked, NET)
    assert inside.closed
    assert failed.value.kind is ErrorKind.FAILED and "network a" in str(failed.value)
    # A stale bridge is looked up again once, as for a cold plug.
    assert [c[0] for c in fake.calls].count("adopt_veth") == 2
