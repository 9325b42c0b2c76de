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


def test_a_parked_veth_is_made_down_on_no_bridge_then_plugged_at_the_claim(
    fake: FakeNetlink, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []

    def create_veth(nl: object, name: str, **kw: Any) -> Any:
        made.append({"name": name, **kw})
        return SimpleNamespace(index=41, link=3)

    class Inside:
        closed = False

        def close(self) -> None:
            Inside.closed = True

        def __enter__(self) -> Inside:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    monkeypatch.setattr(netlink, "create_veth", create_veth)
    monkeypatch.setattr(netlink, "open_in_namespace", lambda fd: Inside())
    monkeypatch.setattr(netlink, "adopt_veth", lambda nl, *a: fake.calls.append(("adopt_veth", *a)))
    monkeypatch.setattr(
        netlink, "prepare_parked", lambda nl, index: fake.calls.append(("prepare", index))
    )
    monkeypatch.setattr(
        netlink,
        "configure_parked",
        lambda nl, *a: fake.calls.append(("configure_parked", *map(str, a))),
    )
    p = plumber()
    parked = p.park(os.getpid())
    [veth] = made
    assert veth["name"].startswith(plumbing.PARKED_PREFIX) and len(veth["name"]) <= 15
    assert (veth["peer_name"], veth["up"]) == ("eth0", False)
    assert "master" not in veth and "peer_mac" not in veth
    assert (parked.host_index, parked.peer_index) == (41, 3)
    assert fake.calls == [("prepare", 3)]  # eth0 up, quiet, from inside
    assert Inside.closed  # at once: the child configures eth0 itself (pooled.py)
    assert p.park(os.getpid()) and made[1]["name"] != veth["name"]

    p.plug_parked(parked, Attachment(**{**NET.__dict__, "ports": (PortMapping(80, 1),)}))
    assert fake.calls[-2:] == [("adopt_veth", 41, "vethabc", 1500, 10), ("set_hairpin", 41)]
    assert not any(c[0] == "configure_parked" for c in fake.calls)


def test_a_parked_veth_that_cannot_be_plugged_fails_the_launch(
    fake: FakeNetlink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(nl: object, *args: Any) -> None:
        fake.calls.append(("adopt_veth",))
        raise OSError(errno.ENODEV, "adopt: No such device")

    monkeypatch.setattr(netlink, "adopt_veth", refuse)
    parked = plumbing.Parked(41, 3)
    with pytest.raises(RequestError) as failed:
        plumber().plug_parked(parked, NET)
    assert failed.value.kind is ErrorKind.FAILED and "network a" in str(failed.value)
    # A stale bridge is looked up again once, as for a cold plug.
    assert [c[0] for c in fake.calls].count("adopt_veth") == 2
