"""runtime/networks.py without root: network records and their rules, a
container's attachment (addresses, ports, names), start-up rebuild and
clean-up, with the host's side faked (routes, bridges, firewall, DNS)."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from runtime.errors import Conflict, Forbidden, InvalidArgument, NotFound
from runtime.layout import Layout
from runtime.network.attachment import BRIDGE, Attachment, PortMapping
from runtime.network.control import ControlPlane
from runtime.network.firewall import Firewall
from runtime.network.ipam import DEFAULT_POOLS, PoolExhausted, Taken
from runtime.network.ports import PortClash
from runtime.networks import Networks
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, RecordStore
from runtime.spec import ContainerSpec


class FakeNft:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def run(self, what: str, script: str) -> None:
        self.runs.append((what, script))


class FakeDns:
    def __init__(self) -> None:
        from runtime.network.dns import NameTable

        self.table = NameTable()
        self.listening: dict[str, IPv4Address] = {}

    def listen(self, network: str, address: IPv4Address, port: int = 53) -> tuple[str, int]:
        self.listening[network] = address
        return str(address), port

    def unlisten(self, network: str) -> None:
        self.listening.pop(network, None)

    def close(self) -> None:
        pass


class World:
    """The host as the networks see it."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "proc/net/ipv4").mkdir(parents=True)
        (tmp_path / "proc/net/ipv4/ip_forward").write_text("0\n")
        self.proc = tmp_path / "proc"
        self.nft = FakeNft()
        self.dns = FakeDns()
        self.routes = [Taken(IPv4Network("10.0.0.0/8"), "the host's route 10.0.0.0/8 dev eth0")]
        self.bridges: list[str] = []
        self.removed: list[str] = []
        control = ControlPlane(Firewall(self.nft, self.proc), self.dns, self.proc)  # type: ignore[arg-type]
        self.layout = Layout.of(str(tmp_path / "state"))
        Path(self.layout.containers).mkdir(parents=True)
        self.records = RecordStore(str(tmp_path / "db"))
        self.networks = Networks(
            self.layout,
            self.records,
            control,
            routes=lambda: list(self.routes),
            bridges=lambda: list(self.bridges),
            remove_bridge=self.removed.append,
        )

    def record(self, cid: str, spec: ContainerSpec, status: str = RUNNING) -> ContainerRecord:
        record = ContainerRecord(cid, f"c{cid[:4]}", status, spec, "2026-01-01T00:00:00Z")  # type: ignore[arg-type]
        self.records.insert(record)
        return record

    def exit(self, record: ContainerRecord) -> ContainerRecord:
        """As runtime/exits.py records an exit: the record, then ``ended``."""
        ended = self.records.update(record.id, status=EXITED)
        self.networks.ended(ended)
        return ended

    def attach(
        self,
        cid: str,
        network: str,
        ports: tuple[PortMapping, ...] = (),
        aliases: tuple[str, ...] = (),
    ) -> ContainerRecord:
        planned = self.networks.plan(network, ports, aliases)
        spec = ContainerSpec(command=("true",), hostname=cid[:12], network=planned)
        record = self.record(cid, self.networks.attach(cid, spec))
        return record


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_the_builtins_are_listed_and_bridge_avoids_the_hosts_routes(world: World) -> None:
    world.routes.append(Taken(IPv4Network("172.17.0.0/16"), "docker0"))
    listed = world.networks.every()
    assert [n.name for n in listed] == ["none", "host", "bridge"]
    bridge = listed[2]
    assert (bridge.subnet, bridge.gateway, bridge.bridge) == (
        "172.18.0.0/16",
        "172.18.0.1",
        "mydocker0",
    )
    assert world.networks.get(bridge.id[:10]).name == "bridge"
    assert world.nft.runs == []  # nothing made on the host by listing


def test_with_every_default_subnet_taken_lookups_and_listing_still_answer(
    world: World,
) -> None:
    """Only a container on ``bridge`` needs its subnet: a lookup of another
    name is a 404, the listing shows ``bridge`` without a subnet (recorded
    once one is free), a user network with its own subnet can be made."""
    world.routes += [Taken(net, f"the host's route {net}") for net in DEFAULT_POOLS]
    with pytest.raises(NotFound):
        world.networks.get("nosuch")
    with pytest.raises(NotFound):
        world.networks.plan("nosuch", (), ())
    listed = world.networks.every()
    assert [n.name for n in listed] == ["none", "host", "bridge"]
    bridge = world.networks.get("bridge")
    assert bridge == listed[2] == world.networks.get(bridge.id[:12])
    assert (bridge.subnet, bridge.gateway, bridge.bridge) == ("", "", "mydocker0")
    assert world.records.networks() == []  # not recorded without a subnet
    user = world.networks.create("mine", "192.0.2.0/24")
    assert world.networks.get("mine") == user and world.networks.get(user.id) == user
    with pytest.raises(Forbidden):
        world.networks.delete("bridge")
    with pytest.raises(PoolExhausted, match="'bridge' has no subnet: every default subnet"):
        world.attach("c" * 64, "bridge")  # the launch itself: a 409
    with pytest.raises(PoolExhausted, match="every default subnet"):
        world.networks.create("another")
    world.routes.pop()  # the last default subnet is free again
    assert world.networks.every()[2].subnet == str(DEFAULT_POOLS[-1])
    assert [r.name for r in world.records.networks()] == ["mine", "bridge"]
    assert world.networks.get("bridge").id == bridge.id  # the same network as listed before


def test_create_picks_or_checks_a_subnet(world: World) -> None:
    first = world.networks.create("a")
    assert (first.subnet, first.bridge) == ("172.18.0.0/16", "mdk-" + first.id[:11])
    chosen = world.networks.create("b", "192.168.7.0/24", "192.168.7.254", internal=True)
    assert (chosen.gateway, chosen.internal) == ("192.168.7.254", True)
    with pytest.raises(Conflict, match="network 'b'"):
        world.networks.create("c", "192.168.7.128/25")
    with pytest.raises(Conflict, match="route 10.0.0.0/8"):
        world.networks.create("c", "10.9.0.0/16")
    with pytest.raises(Conflict, match="already exists"):
        world.networks.create("a")
    with pytest.raises(Conflict, match="already exists"):
        world.networks.create("bridge")
    for name in ("", "  ", "a/b", "tab\there", "x" * 129):
        with pytest.raises(InvalidArgument) as bad:
            world.networks.create(name)
        assert bad.value.field == "name"
    with pytest.raises(InvalidArgument) as bad:
        world.networks.create("c", gateway="10.1.1.1")
    assert bad.value.field == "gateway"
    assert world.dns.listening == {
        "a": IPv4Address("172.18.0.1"),
        "b": IPv4Address("192.168.7.254"),
    }
    assert world.proc.joinpath("net/ipv4/ip_forward").read_text() == "1\n"
    assert "mdk-" + first.id[:11] in world.nft.runs[-1][1]


def test_plan_refuses_what_a_mode_cannot_have(world: World) -> None:
    port = (PortMapping(80),)
    assert world.networks.plan("none", (), ()) is None
    assert world.networks.plan("host", (), ()) == Attachment(mode="host", network="host")
    for mode, ports, aliases, field in [
        ("none", port, (), "ports"),
        ("host", port, (), "ports"),
        ("host", (), ("x",), "network_aliases"),
        ("bridge", (), ("x",), "network_aliases"),
    ]:
        with pytest.raises(InvalidArgument) as refused:
            world.networks.plan(mode, ports, aliases)
        assert refused.value.field == field
    with pytest.raises(NotFound):
        world.networks.plan("nosuch", (), ())
    world.networks.create("a")
    with pytest.raises(InvalidArgument) as refused:
        world.networks.plan("a", (), ("ok", "not ok"))
    assert refused.value.field == "network_aliases.1"


def test_attach_allocates_the_lowest_free_address_of_live_containers(world: World) -> None:
    world.routes.clear()
    world.networks.create("a", "10.200.0.0/24")
    one = world.attach("1" * 64, "a")
    two = world.attach("2" * 64, "a")
    assert [r.spec.network.address for r in (one, two)] == ["10.200.0.2/24", "10.200.0.3/24"]  # type: ignore[union-attr]
    net = one.spec.network
    assert net is not None
    assert (net.gateway, net.mac, net.veth, net.bridge) == (
        "10.200.0.1",
        "02:42:0a:c8:00:02",
        "veth11111111111",
        world.networks.get("a").bridge,
    )
    assert net.etc_dir == world.layout.etc_files + "/" + "1" * 64
    world.exit(one)
    assert world.attach("3" * 64, "a").spec.network.address == "10.200.0.2/24"  # type: ignore[union-attr]


def test_ports_get_a_free_host_port_and_clashes_are_409s(world: World) -> None:
    world.networks.create("a")
    asked = (PortMapping(80), PortMapping(53, protocol="udp"))
    net = world.attach("1" * 64, "a", ports=asked).spec.network
    assert net is not None
    assert all(p.host_port > 0 for p in net.ports)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        used = taken.getsockname()[1]
        with pytest.raises(PortClash, match=f"port {used}/tcp"):
            world.attach("2" * 64, "a", ports=(PortMapping(80, used),))
    free = used + 1 if used < 65535 else 1024
    with pytest.raises(PortClash, match=f"port {free}/tcp"):
        world.attach("3" * 64, "a", ports=(PortMapping(1, free), PortMapping(2, free)))
    # Promised to a live container whose launcher has not bound it yet: a clash too.
    promised = net.ports[0]
    with pytest.raises(PortClash, match=f"port {promised.host_port}/tcp"):
        world.attach("5" * 64, "a", ports=(PortMapping(1, promised.host_port, "tcp", "0.0.0.0"),))
    with pytest.raises(InvalidArgument) as bad:
        world.attach("4" * 64, "a", ports=(PortMapping(1, 0, "tcp", "192.0.2.1"),))
    assert bad.value.field == "ports.0.host_ip"


def test_started_writes_files_publishes_and_names_then_ended_undoes(world: World) -> None:
    world.networks.create("a")
    record = world.attach("1" * 64, "a", ports=(PortMapping(80),), aliases=("db",))
    net = record.spec.network
    assert net is not None
    world.networks.started(record)
    etc = Path(net.etc_dir)
    assert f"nameserver {net.gateway}" in (etc / "resolv.conf").read_text()
    assert f"{net.ip}\t{record.spec.hostname} {record.name} db" in (etc / "hosts").read_text()
    assert (etc / "hostname").read_text() == record.spec.hostname + "\n"
    published = world.nft.runs[-1]
    assert (
        published[0] == "publish ports"
        and f"{net.ports[0].host_port} : {net.ip} . 80" in published[1]
    )
    names = world.networks.control.names
    assert names.lookup("a", "db") == names.lookup("a", record.name) == [IPv4Address(net.ip)]
    world.networks.ended(record)
    assert world.nft.runs[-1][0] == "unpublish ports"
    assert names.lookup("a", "db") is None


def test_delete_rules(world: World) -> None:
    made = world.networks.create("a")
    record = world.attach("1" * 64, "a")
    with pytest.raises(Conflict, match=record.name):
        world.networks.delete("a")
    with pytest.raises(Forbidden):
        world.networks.delete("bridge")
    world.records.update(record.id, status=EXITED)
    world.networks.delete(made.id[:12])
    assert world.removed == [made.bridge]
    assert "a" not in world.dns.listening
    with pytest.raises(NotFound):
        world.networks.get("a")
    world.networks.create("b")
    world.networks.create("c")
    world.attach("2" * 64, "c")  # c stays in use
    assert world.networks.prune() == ["b"]


def test_restore_rebuilds_from_the_records_and_removes_leftover_bridges(world: World) -> None:
    world.networks.restore()
    assert world.nft.runs == []  # nothing in use: nothing touched
    kept = world.networks.create("a")
    live = world.attach("1" * 64, "a", ports=(PortMapping(80),))
    created = world.attach("2" * 64, "a")
    world.records.update(created.id, status=CREATED)
    gone = world.attach("3" * 64, "a", ports=(PortMapping(81),))
    world.records.update(gone.id, status=EXITED)
    world.bridges = [kept.bridge, "mdk-0123456789a"]
    world.nft.runs.clear()
    networks = Networks(
        world.layout,
        world.records,
        ControlPlane(Firewall(world.nft, world.proc), FakeDns(), world.proc),  # type: ignore[arg-type]
        routes=lambda: [],
        bridges=lambda: list(world.bridges),
        remove_bridge=world.removed.append,
    )
    networks.restore()
    [(what, script)] = world.nft.runs
    assert what == "apply the firewall"
    assert f": {live.spec.network.ip} . 80" in script  # type: ignore[union-attr]
    assert ". 81" not in script
    assert world.removed == ["mdk-0123456789a"]
    assert networks.control.names.lookup("a", live.name) == [IPv4Address(live.spec.network.ip)]  # type: ignore[union-attr]
    assert networks.control.names.lookup("a", gone.name) is None


def test_a_container_name_dns_cannot_carry_is_left_out(world: World) -> None:
    world.networks.create("a")
    planned = world.networks.plan("a", (), ())
    spec = ContainerSpec(command=("true",), hostname="h", network=planned)
    spec = world.networks.attach("9" * 64, spec)
    record = ContainerRecord("9" * 64, "9" * 64, RUNNING, spec, "2026-01-01T00:00:00Z")
    world.networks.started(replace(record))
    names = world.networks.control.names
    assert names.lookup("a", "9" * 12) is not None and names.lookup("a", "9" * 64) is None


def test_readdress_keeps_a_free_address_takes_another_or_refuses_a_static_one(
    world: World,
) -> None:
    from runtime.network.attachment import EndpointOptions
    from runtime.network.ipam import AddressInUse
    from runtime.records import EXITED

    world.networks.create("a", "172.30.0.0/24")
    owner = world.attach("1" * 64, "a")
    assert owner.spec.network is not None and owner.spec.network.ip == "172.30.0.2"
    exited = world.exit(owner)
    assert world.networks.readdress(exited) == exited.spec  # still free: kept
    world.networks.ended(exited)  # (that run exited again)
    world.attach("2" * 64, "a")  # takes .2 meanwhile
    moved = world.networks.readdress(exited).network
    assert moved is not None and (moved.ip, moved.mac) == ("172.30.0.3", "02:42:ac:1e:00:03")
    planned = world.networks.plan("a", (), (), EndpointOptions(ipv4_address="172.30.0.2"))
    static = ContainerSpec(command=("true",), hostname="s", network=planned)
    with pytest.raises(AddressInUse, match="172.30.0.2"):
        world.networks.attach("3" * 64, static)
    assert planned is not None
    mine = world.record(
        "4" * 64, replace(static, network=replace(planned, address="172.30.0.2/24")), status=EXITED
    )
    with pytest.raises(AddressInUse, match="172.30.0.2"):
        world.networks.readdress(mine)


def test_a_link_to_a_container_named_by_its_full_id_is_a_hosts_line_of_what_fits(
    world: World,
) -> None:
    """An unnamed container's name is its 64-digit id, more than a DNS
    label holds: the link's line carries the alias and the short id."""
    from runtime.network.attachment import EndpointOptions

    target = world.attach("a" * 64, "bridge")
    world.records.update(target.id, name=target.id)
    planned = world.networks.plan("bridge", (), (), EndpointOptions(links=(f"{target.id}:db",)))
    spec = ContainerSpec(command=("true",), hostname="linker", network=planned)
    linker = world.record("b" * 64, world.networks.attach("b" * 64, spec))
    world.networks.write_etc(linker)
    assert linker.spec.network is not None and target.spec.network is not None
    hosts = (Path(linker.spec.network.etc_dir) / "hosts").read_text()
    assert f"{target.spec.network.ip}\tdb {'a' * 12}\n" in hosts


def test_the_etc_files_go_with_the_container_and_with_records_gone_meanwhile(
    world: World,
) -> None:
    world.networks.create("a")
    kept = world.attach("1" * 64, "a")
    gone = world.attach("2" * 64, "a")
    for record in (kept, gone):
        world.networks.started(record)
    world.networks.removed(gone)
    assert os.listdir(world.layout.etc_files) == [kept.id]
    # An older record's files in its container dir are not the service's to remove here.
    old_dir = world.layout.container_dir("3" * 64) + "/etc"
    assert kept.spec.network is not None
    older = replace(kept.spec, network=replace(kept.spec.network, etc_dir=old_dir))
    old = world.record("3" * 64, older)
    world.networks.write_etc(old)
    world.networks.removed(old)
    assert os.path.exists(old_dir + "/hosts")
    # Removed while the service was down: swept at start-up.
    os.mkdir(world.layout.etc_files + "/" + "4" * 64)
    world.records.delete(kept.id)
    world.networks.restore()
    assert os.listdir(world.layout.etc_files) == []


def test_an_address_taken_for_a_record_never_written_comes_back(world: World) -> None:
    from runtime.network.attachment import EndpointOptions

    world.networks.create("a", "192.168.70.0/24")
    planned = world.networks.plan("a", (), ())
    spec = ContainerSpec(command=("true",), hostname="h", network=planned)
    lost = world.networks.attach("1" * 64, spec).network
    assert lost is not None and lost.ip == "192.168.70.2"
    world.networks.forget("1" * 64)  # its insert failed (Launches.begin)
    assert world.attach("2" * 64, "a").spec.network.ip == "192.168.70.2"  # type: ignore[union-attr]
    # Lost without a word: a static address it holds is found free in the records.
    world.networks.attach("3" * 64, spec)  # .3, never recorded
    static = world.networks.plan("a", (), (), EndpointOptions(ipv4_address="192.168.70.3"))
    wanted = ContainerSpec(command=("true",), hostname="s", network=static)
    assert world.record("4" * 64, world.networks.attach("4" * 64, wanted)).spec.network.ip == (  # type: ignore[union-attr]
        "192.168.70.3"
    )


def test_an_exit_told_after_a_relaunch_leaves_the_address_held(world: World) -> None:
    world.networks.create("a", "192.168.70.0/24")
    first = world.attach("1" * 64, "a")
    exited = world.exit(first)
    # Relaunched (readdress and the record under the lock) before the exit's
    # ``ended`` came: the late ``ended`` must not free what the new run holds.
    again = world.records.update(first.id, status=CREATED, spec=world.networks.readdress(exited))
    world.networks.ended(exited)
    assert again.spec.network is not None and again.spec.network.ip == "192.168.70.2"
    assert world.attach("2" * 64, "a").spec.network.ip == "192.168.70.3"  # type: ignore[union-attr]


def test_a_launch_reads_no_live_records_however_many_run(world: World) -> None:
    """The addresses and links of the live containers are kept in memory
    (network/endpoints.py): with 200 containers on the network, a launch's
    attach and started read no list of records."""
    world.networks.create("a", "172.28.0.0/16")
    for n in range(200):
        world.networks.started(world.attach(f"{n:04x}" + "e" * 60, "a"))
    calls: list[str] = []
    listed = world.records.list

    def counting(*args: object, **kwargs: object) -> list[ContainerRecord]:
        calls.append("list")
        return listed(*args, **kwargs)  # type: ignore[arg-type]

    world.records.list = counting  # type: ignore[method-assign]
    record = world.attach("f" * 64, "a")
    world.networks.started(record)
    published = world.attach("d" * 64, "a", ports=(PortMapping(80),))
    assert calls == []
    assert record.spec.network is not None and record.spec.network.ip == "172.28.0.202"
    world.exit(record)
    world.exit(published)
    assert calls == []


def test_the_ports_promised_go_with_the_exit_and_come_back_with_a_relaunch(world: World) -> None:
    world.networks.create("a")
    first = world.attach("1" * 64, "a", ports=(PortMapping(80),))
    assert first.spec.network is not None
    promised = first.spec.network.ports[0]
    again = (PortMapping(1, promised.host_port),)
    with pytest.raises(PortClash):
        world.attach("2" * 64, "a", ports=again)
    world.networks.forget("2" * 64)
    exited = world.exit(first)
    taken = world.attach("3" * 64, "a", ports=again)  # free once the first exited
    world.exit(taken)
    world.records.update(first.id, status=CREATED, spec=world.networks.readdress(exited))
    with pytest.raises(PortClash):
        world.attach("4" * 64, "a", ports=again)  # promised to the relaunch again


def test_a_removal_before_any_network_use_reads_no_records(world: World) -> None:
    """The index is built on first use; a removal (the auto-remove thread's,
    which may run as the service closes its store) does not build it."""
    record = world.record("a" * 64, ContainerSpec(command=("true",), hostname="a"), EXITED)
    world.records.close()
    world.networks.removed(record)
    world.networks.release(record.id, Attachment(mode=BRIDGE, network=BRIDGE))
