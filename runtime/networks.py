"""``Networks``: the networks (records), and each container's place on one.

    every / get / create / delete / prune   the built-ins ``none``, ``host``,
                  ``bridge`` (recorded the first time it is needed, its
                  subnet picked clear of the host's routes) and user networks
    plan          the request's network, ports and aliases, checked
                  (``Runtime.create`` calls it; nothing is allocated yet)
    attach        under the lock that inserts the record: the address, MAC,
                  host ports, veth name, written into the spec the record keeps
    started       after the insert, before the launch: the container's /etc
                  files (on a tmpfs: network/etcdir.py), its published ports
                  in the firewall, its DNS names
    ended         at its exit: ports unpublished, names forgotten (the
                  launcher lets the ports go, the kernel drops the veth)
    removed       at its removal: its /etc files
    restore       at start-up: the firewall, DNS and bridges rebuilt from
                  the records; bridges of networks that are gone removed

The records are the truth: the addresses and ports in use are read from the
live containers' specs each time, so a crash can neither leak nor double
one (docs/networking.md).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from runtime.errors import Conflict, Forbidden, InvalidArgument, NotFound
from runtime.events import Event, EventLog, EventType
from runtime.layout import Layout
from runtime.network import etcfiles, hostports, netlink
from runtime.network.attachment import (
    BRIDGE,
    BUILTIN_NETWORKS,
    CONTAINER_IFNAME,
    ETC_FILES,
    HOST,
    NONE,
    Attachment,
    EndpointOptions,
    PortMapping,
    veth_name,
)
from runtime.network.control import ControlPlane
from runtime.network.dns import check_name
from runtime.network.etcdir import EtcDir
from runtime.network.firewall import Network, Protocol, PublishedPort
from runtime.network.ipam import (
    AddressInUse,
    AddressPool,
    PoolExhausted,
    Subnet,
    Taken,
    check_ip_range,
    check_subnet,
    mac_for,
    pick_subnet,
)
from runtime.network.ipam import host_routes_taken as _host_routes_taken
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

#: The built-in ``bridge`` network's Linux bridge; user networks' are
#: ``mdk-`` + 11 hex digits of their id (IFNAMSIZ holds 15 characters).
DEFAULT_BRIDGE = "mydocker0"
BRIDGE_PREFIX = "mdk-"


def host_routes_taken() -> list[Taken]:
    with netlink.Netlink() as nl:
        return _host_routes_taken(nl)


def _fixed_id(name: str) -> str:
    return hashlib.sha256(f"mydocker network {name}".encode()).hexdigest()


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
        self._started_at = now_rfc3339()
        #: Where ``create``, ``destroy``, ``connect`` and ``disconnect`` are
        #: told (Docker's network events); the Runtime sets it.
        self.events: EventLog | None = None
        #: The host's resolv.conf, read again only when it changed.
        self._host_resolv = etcfiles.HostResolv()
        self.etc = etc if etc is not None else EtcDir(layout.etc_files, mount=False)

    # -- the networks ----------------------------------------------------
    def _virtual(self, name: str) -> NetworkRecord:
        return NetworkRecord(name, _fixed_id(name), "", "", "", False, self._started_at)

    def _bridge_record(self) -> NetworkRecord:
        """The built-in ``bridge``: recorded the first time it is needed."""
        for record in self.records.networks():
            if record.name == BRIDGE:
                return record
        subnet = pick_subnet(self._taken(exclude=BRIDGE))
        record = NetworkRecord(
            BRIDGE,
            _fixed_id(BRIDGE),
            str(subnet),
            str(subnet.network_address + 1),
            DEFAULT_BRIDGE,
            False,
            now_rfc3339(),
        )
        self.records.insert_network(record)
        return record

    def _bridge_listed(self) -> NetworkRecord:
        """The built-in ``bridge`` as listed: recorded if a subnet is free;
        else shown without one and not recorded (a lookup, a listing or
        another network's create must not fail for it; a container on it
        gets the 409 from ``address``)."""
        with self.lock:
            try:
                return self._bridge_record()
            except PoolExhausted:
                return replace(self._virtual(BRIDGE), bridge=DEFAULT_BRIDGE)

    def _bridge_launched(self) -> NetworkRecord:
        """The built-in ``bridge`` for a container on it: recorded now if not
        yet, or a 409 saying what to do instead."""
        try:
            return self._bridge_record()
        except PoolExhausted as err:
            raise PoolExhausted(
                f"network {BRIDGE!r} has no subnet: every default subnet overlaps "
                "a network or a route; use a user network with a subnet of its own"
            ) from err

    def every(self) -> list[NetworkRecord]:
        bridge = self._bridge_listed()
        users = [r for r in self.records.networks() if r.name != BRIDGE]
        return [self._virtual(NONE), self._virtual(HOST), bridge, *users]

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

    def _taken(self, exclude: str = "") -> list[Taken]:
        networks = [
            Taken(IPv4Network(r.subnet), f"network {r.name!r}")
            for r in self.records.networks()
            if r.name != exclude
        ]
        return networks + self._routes()

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
            self._bridge_listed()  # first, so the bridge's subnet is picked first
            if name in BUILTIN_NETWORKS or any(r.name == name for r in self.records.networks()):
                raise Conflict(f"network {name!r} already exists")
            taken = self._taken()
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
        net = replace(
            net,
            ports=ports,
            etc_dir=self.etc.path(container_id),
        )
        return replace(spec, network=net)

    def address(self, container_id: str, asked: Attachment) -> Attachment:
        """``asked`` with an address of its network (the static one asked
        for, or the lowest free one of the range), its MAC, gateway, bridge
        and host end; under ``lock``.  The container's own addresses are
        not counted (a relaunch takes its own again)."""
        record = self._bridge_launched() if asked.network == BRIDGE else self.get(asked.network)
        subnet = Subnet.of(record.subnet, record.gateway)
        in_use = [
            a.ip
            for r in self.containers(record.name)
            if r.id != container_id
            for a in r.spec.attachments()
            if a.network == record.name
        ]
        pool = AddressPool(subnet, in_use, record.ip_range, record.aux_addresses.values())
        wanted = asked.options.ipv4_address
        address = pool.reserve(wanted, "ipv4_address") if wanted else pool.allocate()
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
            return replace(spec, network=first, endpoints=tuple(again(e) for e in spec.endpoints))

    def _host_ports(self, asked: tuple[PortMapping, ...]) -> tuple[PortMapping, ...]:
        """Each port as it will be held: a free one for 0, a clash refused
        here (409) before anything is recorded.  The launcher holds them;
        until it has, the live records say which ports are promised."""
        if not asked:
            return ()  # no records to read
        live = self.records.list(status=RUNNING) + self.records.list(status=CREATED)
        return hostports.pick(
            asked, [p for r in live if r.spec.network for p in r.spec.network.ports]
        )

    def started(self, record: ContainerRecord) -> None:
        """Before a launch (a create, or a start of an exited container):
        the /etc files, the ports, the names of every network it is on."""
        for net in record.spec.attachments():
            self.joined(record, net)

    def joined(self, record: ContainerRecord, net: Attachment) -> None:
        """``net`` recorded for the container (at launch, or connected): its
        /etc files (rewritten in place: the container has them bound), the
        firewall on first use, its ports, its names on ``net``."""
        self.write_etc(record)
        with self.lock:
            if not self.control.active:
                self._rebuild()
        self.control.publish(_published(net))
        if net.network != BRIDGE:
            self._add_names(record, net)
        self._publish("connect", self._id_of(net.network), net.network, container=record.id)

    def _add_names(self, record: ContainerRecord, net: Attachment) -> None:
        """Its names on a user network, and the links' (Docker makes a link
        there an alias of the linked container; ours is seen network-wide):
        those its own links give others, those others' links give it."""
        names = _names(record, net)
        live = [r for r in _live(self.records) if r.id != record.id]
        for other in live:
            theirs = endpoint_on(other, net.network)
            for link in theirs.options.links if theirs else ():
                name, _, alias = link.partition(":")
                if name in (record.name, record.id, record.id[:12]):
                    names.append(alias or name)
        self.control.add_names(net.network, IPv4Address(net.ip), names)
        for link in net.options.links:
            name, _, alias = link.partition(":")
            found = self._linked(name, net.network)
            if found is not None and alias:
                self.control.add_names(net.network, IPv4Address(found[1].ip), [alias])

    def ended(self, record: ContainerRecord) -> None:
        for net in record.spec.attachments():
            self.left(record, net)

    def removed(self, record: ContainerRecord) -> None:
        """The container is gone for good: its /etc files too (an older
        record's, in its container dir, went with that dir)."""
        first = record.spec.network
        if first is not None and first.etc_dir and self.etc.owns(first.etc_dir):
            self.etc.remove(record.id)

    def left(self, record: ContainerRecord, net: Attachment) -> None:
        """``net`` is gone (an exit, a disconnect): ports and names forgotten."""
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

    def _id_of(self, name: str) -> str:
        if name in BUILTIN_NETWORKS:
            return _fixed_id(name)
        return next((r.id for r in self.records.networks() if r.name == name), "")

    def write_etc(self, record: ContainerRecord) -> None:
        """The container's /etc files from its endpoints: ``hosts`` has a
        line per address; ``resolv.conf`` names the embedded DNS of its first
        user network, or the host's resolvers on ``bridge`` alone."""
        first = record.spec.network
        if first is None or not first.etc_dir:
            return
        self.etc.ensure(first.etc_dir)
        search, servers = self._host_resolv.get()
        attached = record.spec.attachments()
        users = [a for a in attached if a.network != BRIDGE]
        if users:
            resolv = etcfiles.resolv_conf(IPv4Address(users[0].gateway), search)
        else:
            # The built-in network has no embedded DNS (as Docker's): the
            # host's resolvers, those a container can reach.
            resolv = etcfiles.resolv_conf(None, search).replace(
                "options", "".join(f"nameserver {s}\n" for s in servers) + "options", 1
            )
        hostname = record.spec.hostname
        hosts = etcfiles.hosts(hostname, None, [])
        for net in attached:
            names = [n for n in _names(record, net) if n != hostname]
            hosts += etcfiles.host_line(IPv4Address(net.ip), [hostname, *names])
        hosts += self._link_lines(attached)
        files = {"resolv.conf": resolv, "hosts": hosts, "hostname": etcfiles.hostname(hostname)}
        for name in ETC_FILES:
            etcfiles.rewrite(os.path.join(first.etc_dir, name), files[name])

    def _link_lines(self, attached: tuple[Attachment, ...]) -> str:
        """``/etc/hosts`` lines of the links on ``bridge`` (Docker's legacy
        links; on a user network a link is an alias, see ``_add_names``)."""
        lines = ""
        for net in attached:
            if net.network != BRIDGE:
                continue
            for link in net.options.links:
                name, _, alias = link.partition(":")
                found = self._linked(name, BRIDGE)
                if found is not None:
                    other, target = found
                    words = _carried([alias or name, other.name, other.id[:12]])
                    lines += etcfiles.host_line(IPv4Address(target.ip), words)
        return lines

    def _linked(self, ref: str, network: str) -> tuple[ContainerRecord, Attachment] | None:
        """The container a link names, and its endpoint on ``network``."""
        try:
            record = self.records.resolve(ref)
        except NotFound:
            return None
        found = endpoint_on(record, network)
        return (record, found) if found is not None and record.status != EXITED else None

    # -- start-up ---------------------------------------------------------------
    def restore(self) -> None:
        """Firewall, DNS names and bridges as the records say, once any
        network is in use; leftover bridges of removed networks go; and the
        /etc files of containers removed meanwhile."""
        self.etc.sweep(r.id for r in self.records.list())
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
                    self._add_names(record, attached)
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


def endpoint_on(record: ContainerRecord, network: str) -> Attachment | None:
    """The container's endpoint on ``network``, if it is connected there."""
    for attached in record.spec.attachments():
        if attached.network == network:
            return attached
    return None


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


def _names(record: ContainerRecord, net: Attachment) -> list[str]:
    """What a container answers to on ``net``: name, aliases, short id."""
    return _carried([record.name, *net.aliases, record.id[:12]])


def _carried(wanted: list[str]) -> list[str]:
    """The names a DNS answer or a hosts(5) line can carry, once each."""
    names = []
    for name in dict.fromkeys(wanted):
        try:
            names.append(check_name(name))
        except (ValueError, InvalidArgument):
            continue  # a name DNS cannot carry (a 64-digit id): not resolvable by it
    return names
