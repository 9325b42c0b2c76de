"""``Networks``: the networks (records), and each container's place on one.

    every / get / create / delete / prune   the built-ins ``none``, ``host``,
                  ``bridge`` (network/builtins.py: recorded the first time it
                  is needed, its subnet picked clear of the host's routes) and
                  user networks
    plan          the request's network, ports and aliases, checked
                  (``Runtime.create`` calls it; nothing is allocated yet)
    attach        under the lock that inserts the record: the address, MAC,
                  host ports, veth name, written into the spec the record keeps
    started       after the insert, before the launch: the container's /etc
                  files and DNS names (network/names.py), its published ports
                  in the firewall
    ended         at its exit: address given back, ports unpublished, names
                  forgotten (the launcher lets the ports go, the kernel drops
                  the veth)
    removed       at its removal: its /etc files
    forget / release   an address taken for a launch or a connect that failed
    restore       at start-up: the firewall, DNS and bridges rebuilt from
                  the records; bridges of networks that are gone removed

The records are the truth.  The addresses and links of the live containers
are kept in memory (network/endpoints.py) so that a launch does not read
every live record; they are derived from the records, built again from them
at start-up and for a network whose refusal might be stale, so a crash can
neither leak nor double an address (docs/networking.md).  The host ports
promised to live containers are still read from the records, and only by a
launch that publishes ports.
"""

from __future__ import annotations

import errno
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from runtime.errors import Conflict, Forbidden, InvalidArgument, NotFound
from runtime.events import Event, EventLog, EventType
from runtime.layout import Layout
from runtime.network import hostports, netlink
from runtime.network.attachment import (
    BRIDGE,
    BUILTIN_NETWORKS,
    CONTAINER_IFNAME,
    HOST,
    NONE,
    Attachment,
    EndpointOptions,
    PortMapping,
    veth_name,
)
from runtime.network.builtins import (
    BRIDGE_PREFIX,
    Builtins,
    fixed_id,
    host_routes_taken,
)
from runtime.network.control import ControlPlane
from runtime.network.endpoints import Endpoints
from runtime.network.etcdir import EtcDir
from runtime.network.firewall import Network, Protocol, PublishedPort
from runtime.network.ipam import (
    AddressInUse,
    PoolExhausted,
    Subnet,
    Taken,
    check_ip_range,
    check_subnet,
    mac_for,
    pick_subnet,
)
from runtime.network.names import Names, endpoint_on
from runtime.network.rules import (
    check_aliases,
    check_network_name,
    check_options_unbridged,
    check_static,
)
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, NetworkRecord, RecordStore
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.network")


class Networks:
    def __init__(
        self,
        layout: Layout,
        records: RecordStore,
        control: ControlPlane | None = None,
        routes: Callable[[], list[Taken]] = host_routes_taken,
        bridges: Callable[[], list[str]] | None = None,
        remove_bridge: Callable[[str], None] | None = None,
        etc: EtcDir | None = None,
    ) -> None:
        """``routes``, ``bridges`` (our bridges' names on the host) and
        ``remove_bridge`` reach the host through netlink; tests pass fakes.
        ``etc``: where the /etc files go (the Runtime's mounts a tmpfs; by
        default a plain directory of the state dir)."""
        self.layout = layout
        self.records = records
        self.control = control if control is not None else ControlPlane()
        self._routes = routes
        self._bridges = bridges or _our_bridges
        self._remove_bridge = remove_bridge or _delete_bridge
        #: Networks made or removed, and containers attached, one at a time
        #: (reentrant: ``get`` takes it too).
        self.lock = threading.RLock()
        self.builtins = Builtins(records, routes, self.lock)
        #: Where ``create``, ``destroy``, ``connect`` and ``disconnect`` are
        #: told (Docker's network events); the Runtime sets it.
        self.events: EventLog | None = None
        self.etc = etc if etc is not None else EtcDir(layout.etc_files, mount=False)
        #: Its /etc files and DNS names (network/names.py).
        self.names = Names(records, self.control, self.etc, self._linked_by)
        #: The live endpoints of each network (network/endpoints.py), built
        #: from the records on first use and again by ``restore``.
        self._endpoints: Endpoints | None = None

    def _index(self) -> Endpoints:
        """Under ``lock``."""
        if self._endpoints is None:
            endpoints = Endpoints()
            endpoints.rebuild(self.records.networks(), _live(self.records))
            self._endpoints = endpoints
        return self._endpoints

    def _linked_by(self, network: str, container_id: str, refs: Iterable[str]) -> list[str]:
        with self.lock:
            return self._index().linked_by(network, container_id, refs)

    # -- the networks ----------------------------------------------------
    def every(self) -> list[NetworkRecord]:
        bridge = self.builtins.listed()
        users = [r for r in self.records.networks() if r.name != BRIDGE]
        virtual = self.builtins.virtual
        return [virtual(NONE), virtual(HOST), bridge, *users]

    def get(self, ref: str) -> NetworkRecord:
        """By name, id, or a unique prefix of the id."""
        every = self.every()
        for record in every:
            if ref in (record.name, record.id):
                return record
        found = [r for r in every if ref and r.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        raise NotFound("network", ref)

    def containers(self, name: str) -> list[ContainerRecord]:
        """The live (created or running) containers on network ``name``."""
        return [r for r in _live(self.records) if endpoint_on(r, name) is not None]

    def create(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ip_range: str | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> NetworkRecord:
        check_network_name(name)
        with self.lock:
            self.builtins.listed()  # first, so the bridge's subnet is picked first
            if name in BUILTIN_NETWORKS or any(r.name == name for r in self.records.networks()):
                raise Conflict(f"network {name!r} already exists")
            taken = self.builtins.taken()
            if subnet is None:
                if gateway is not None:
                    raise InvalidArgument("gateway", "a gateway needs a subnet")
                chosen = Subnet.of(pick_subnet(taken))
            else:
                chosen = Subnet.of(subnet, gateway)
                check_subnet(chosen.network, taken)
            chosen_range = check_ip_range(chosen, ip_range, aux_addresses or {})
            network_id = secrets.token_hex(32)
            record = NetworkRecord(
                name,
                network_id,
                str(chosen.network),
                str(chosen.gateway),
                BRIDGE_PREFIX + network_id[:11],
                internal,
                now_rfc3339(),
                dict(labels or {}),
                str(chosen_range) if chosen_range else "",
                dict(aux_addresses or {}),
            )
            self.records.insert_network(record)
            self._rebuild()
            self.control.listen(name, chosen.gateway)
        self._publish("create", record.id, record.name)
        return record

    def delete(self, ref: str) -> None:
        record = self.get(ref)
        if record.name in BUILTIN_NETWORKS:
            raise Forbidden(f"{record.name} is a built-in network and cannot be removed")
        with self.lock:
            users = self.containers(record.name)
            if users:
                names = ", ".join(r.name for r in users[:5])
                raise Conflict(f"network {record.name!r} has containers attached: {names}")
            self.records.delete_network(record.name)
            self._index().forget_network(record.name)
            self.control.unlisten(record.name)
            self._remove_bridge(record.bridge)
            if self.control.active:
                self._rebuild()
        self._publish("destroy", record.id, record.name)

    def prune(self) -> list[str]:
        """Remove every user network without containers; their names."""
        removed: list[str] = []
        for record in self.every():
            if record.name in BUILTIN_NETWORKS or self.containers(record.name):
                continue
            try:
                self.delete(record.name)
            except Conflict:
                continue
            removed.append(record.name)
        return removed

    # -- a container's place ------------------------------------------------
    def plan(
        self,
        network: str,
        ports: tuple[PortMapping, ...],
        aliases: tuple[str, ...],
        options: EndpointOptions | None = None,
    ) -> Attachment | None:
        """The request's network, checked; allocated later by ``attach``."""
        options = options or EndpointOptions()
        if network in (NONE, HOST):
            check_options_unbridged(network, options)
            if ports:
                raise InvalidArgument("ports", f"ports need a bridge network, not {network!r}")
            if aliases:
                raise InvalidArgument(
                    "network_aliases", f"aliases need a user network, not {network!r}"
                )
            return None if network == NONE else Attachment(mode=HOST, network=HOST)
        if network == BRIDGE and aliases:
            raise InvalidArgument("network_aliases", "aliases need a user network, not 'bridge'")
        check_aliases(aliases)
        record = self.get(network)  # NotFound: 404
        check_static(record, options)
        return Attachment(
            mode=BRIDGE, network=record.name, ports=ports, aliases=aliases, options=options
        )

    def attach(self, container_id: str, spec: ContainerSpec) -> ContainerSpec:
        """The spec with its address, MAC, veth and actual host ports; called
        under the lock that inserts the record, so two launches never get
        the same address or port."""
        asked = spec.network
        if asked is None or not asked.bridged:
            return spec
        with self.lock:
            net = self.address(container_id, asked)
            ports = self._host_ports(asked.ports)
            self._index().hold_ports(net.network, container_id, ports)
        net = replace(
            net,
            ports=ports,
            etc_dir=self.etc.path(container_id),
        )
        return replace(spec, network=net)

    def address(self, container_id: str, asked: Attachment) -> Attachment:
        """``asked`` with an address of its network (the static one asked
        for, or the lowest free one of the range), its MAC, gateway, bridge
        and host end; under ``lock``, held for the container from now on
        (``Endpoints``).  The container's own addresses are not counted (a
        relaunch takes its own again)."""
        launched = self.builtins.launched
        record = launched() if asked.network == BRIDGE else self.get(asked.network)
        index = self._index()
        try:
            subnet, address = index.take(record, container_id, asked)
        except (AddressInUse, PoolExhausted):
            # Held for a launch whose record was never written, perhaps:
            # the records say, once.
            index.rebuild([record], _live(self.records), only=record.name)
            subnet, address = index.take(record, container_id, asked)
        suffix = "" if asked.ifname == CONTAINER_IFNAME else asked.ifname[3:]
        return replace(
            asked,
            bridge=record.bridge,
            address=str(subnet.interface(address)),
            gateway=record.gateway,
            mac=asked.options.mac_address or mac_for(address),
            veth=veth_name(container_id, suffix),
        )

    def readdress(self, record: ContainerRecord) -> ContainerSpec:
        """An exited container's endpoints before it starts again: its
        addresses were free for others while it was exited (Docker releases
        them at the stop too).  Each keeps its address when still free, else
        gets another; a static one taken meanwhile is a 409."""
        spec = record.spec

        def again(net: Attachment) -> Attachment:
            if not net.connected:
                return net
            keep = replace(net.options, ipv4_address=net.options.ipv4_address or net.ip)
            try:
                return replace(
                    self.address(record.id, replace(net, options=keep)), options=net.options
                )
            except AddressInUse:
                if net.options.ipv4_address:
                    raise
                return self.address(record.id, net)

        with self.lock:
            first = again(spec.network) if spec.network is not None else None
            if first is not None:
                self._index().hold_ports(first.network, record.id, first.ports)
            return replace(spec, network=first, endpoints=tuple(again(e) for e in spec.endpoints))

    def _host_ports(self, asked: tuple[PortMapping, ...]) -> tuple[PortMapping, ...]:
        """Each port as it will be held: a free one for 0, a clash refused
        here (409) before anything is recorded.  The launcher holds them;
        until it has, the live containers' endpoints say which ports are
        promised (under ``lock``)."""
        if not asked:
            return ()
        return hostports.pick(asked, self._index().promised())

    def started(self, record: ContainerRecord) -> None:
        """Before a launch (a create, or a start of an exited container):
        the /etc files, the ports, the names of every network it is on."""
        for net in record.spec.attachments():
            self.joined(record, net)

    def joined(self, record: ContainerRecord, net: Attachment) -> None:
        """``net`` recorded for the container (at launch, or connected): its
        /etc files (rewritten in place: the container has them bound), the
        firewall on first use, its ports, its names on ``net``."""
        self.names.write_etc(record)
        with self.lock:
            if not self.control.active:
                self._rebuild()
        self.control.publish(_published(net))
        if net.network != BRIDGE:
            self.names.add(record, net)
        self._publish("connect", self._id_of(net.network), net.network, container=record.id)

    def ended(self, record: ContainerRecord) -> None:
        for net in record.spec.attachments():
            self.left(record, net)

    def removed(self, record: ContainerRecord) -> None:
        """The container is gone for good: its /etc files too (an older
        record's, in its container dir, went with that dir)."""
        first = record.spec.network
        if first is not None and first.etc_dir and self.etc.owns(first.etc_dir):
            self.etc.remove(record.id)
        self.forget(record.id)

    def forget(self, container_id: str) -> None:
        """Every address the container holds given back, unless its record
        is live with it (a launch that failed before or after its record).
        Nothing to do while the index is unbuilt: its build reads only the
        live records (and a removal must not read the records again: the
        auto-remove thread may run as the store closes)."""
        with self.lock:
            if self._endpoints is None:
                return
            for network, address in self._endpoints.holding(container_id):
                self._release(container_id, network, address)

    def release(self, container_id: str, net: Attachment) -> None:
        """``net``'s address given back without the rest of ``left`` (a
        connect refused by the launcher, or recorded for an exited
        container: an exited one holds no address, docs/networking.md)."""
        with self.lock:
            if self._endpoints is None:
                return  # built later from the live records alone
            self._release(container_id, net.network, net.ip)

    def _release(self, container_id: str, network: str, address: str) -> None:
        """Under ``lock``.  Not while its record is live with that address:
        an exit's ``left`` may come after a relaunch took it again."""
        current = self.records.get(container_id)
        if current is not None and current.status != EXITED:
            mine = endpoint_on(current, network)
            if mine is not None and mine.ip == address:
                return
        self._index().drop(network, container_id, address)

    def left(self, record: ContainerRecord, net: Attachment) -> None:
        """``net`` is gone (an exit, a disconnect): address, ports and names
        forgotten."""
        self.release(record.id, net)
        try:
            self.control.unpublish(_published(net))
        except Exception as err:  # noqa: BLE001 - an exit must be recorded whatever the firewall says
            log.error("unpublishing the ports of %s failed: %s", record.id, err)
        self.control.remove_names(net.network, IPv4Address(net.ip))
        self._publish("disconnect", self._id_of(net.network), net.network, container=record.id)

    def _publish(self, action: str, network_id: str, name: str, container: str = "") -> None:
        """Docker's network event: the network is the actor, ``container``
        the one that joined or left (daemon/network.go LogNetworkEvent*)."""
        if self.events is not None:
            attributes = {"type": "bridge", **({"container": container} if container else {})}
            self.events.publish(
                Event(time.time_ns(), EventType.NETWORK, action, network_id, name, attributes)
            )

    def write_etc(self, record: ContainerRecord) -> None:
        """Its /etc files again (a disconnect: runtime/connections.py)."""
        self.names.write_etc(record)

    def _id_of(self, name: str) -> str:
        if name in BUILTIN_NETWORKS:
            return fixed_id(name)
        return next((r.id for r in self.records.networks() if r.name == name), "")

    # -- start-up ---------------------------------------------------------------
    def restore(self) -> None:
        """Firewall, DNS names and bridges as the records say, once any
        network is in use; leftover bridges of removed networks go; and the
        /etc files of containers removed meanwhile."""
        self.etc.sweep(r.id for r in self.records.list())
        with self.lock:
            self._endpoints = None  # built again from the records on first use
        users = [r for r in self.records.networks() if r.name != BRIDGE]
        live = [r for r in self.records.list(status=RUNNING) + self.records.list(status=CREATED)]
        bridged = [r for r in live if r.spec.attachments()]
        if not users and not bridged and not self.control.active:
            return
        with self.lock:
            self._rebuild()
            for net in users:
                self.control.listen(net.name, IPv4Address(net.gateway))
        for record in bridged:
            for attached in record.spec.attachments():
                if attached.network != BRIDGE:
                    self.names.add(record, attached)
        known = {r.bridge for r in self.records.networks()}
        for bridge in self._bridges():
            if bridge not in known:
                log.info("removing bridge %s of a network that is gone", bridge)
                self._remove_bridge(bridge)

    def _rebuild(self) -> None:
        networks = [
            Network(r.bridge, IPv4Network(r.subnet), IPv4Address(r.gateway), r.internal)
            for r in self.records.networks()
        ]
        live = self.records.list(status=RUNNING) + self.records.list(status=CREATED)
        ports = [p for r in live if r.spec.network for p in _published(r.spec.network)]
        self.control.rebuild(networks, ports)


def _live(records: RecordStore) -> list[ContainerRecord]:
    return records.list(status=RUNNING) + records.list(status=CREATED)


def _our_bridges() -> list[str]:
    """The bridges of user networks (``mdk-*``) in the service's namespace."""
    with netlink.Netlink() as nl:
        found = netlink.links(nl)
    return [k.name for k in found if k.kind == "bridge" and k.name.startswith(BRIDGE_PREFIX)]


def _delete_bridge(bridge: str) -> None:
    try:
        with netlink.Netlink() as nl:
            netlink.delete_link(nl, bridge)
    except OSError as err:
        if err.errno != errno.ENODEV:
            log.warning("could not remove bridge %s: %s", bridge, err)


def _published(net: Attachment) -> list[PublishedPort]:
    if not net.address:
        return []
    return [
        PublishedPort(
            Protocol(p.protocol),
            IPv4Address(p.host_ip),
            p.host_port,
            IPv4Address(net.ip),
            p.container_port,
        )
        for p in net.ports
    ]
