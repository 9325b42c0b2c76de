"""``Endpoints``: the live containers' places on each network, kept in memory.

    rebuild       from the networks' records and the live containers' specs
                  (at start-up, and again when a refusal needs the truth)
    take          a container's address on a network: the one it asks for, or
                  the lowest free one; held for it from then on
    drop          its address given back (its exit, a disconnect, a failed
                  launch or connect)
    linked_by     the aliases other containers' links give it on a network
    hold_ports / promised   the host ports published by the live containers
                  (the launcher binds them only later)
    holder        who holds an address (an error message, a check)
    forget_network   a network removed

What it replaces: each launch read every live record of the service (two
``records.list`` calls, each decoding every spec) to learn the addresses in
use, the links on its network and the host ports promised, so a launch got
slower with each container that ran.  Here a launch costs a dictionary
lookup and the pool's next free address, whatever the number of containers.

The records stay the truth.  Everything here is derived from them and held
under ``Networks.lock``, which also covers the write of the record that
carries an address (a create's insert under the admission lock that calls
``attach``; a connect's or a relaunch's update under ``Networks.lock``), so
two containers never hold one address.  Nothing is written to disk: after a
crash or a restart ``Networks.restore`` rebuilds it from the records.  An
address taken for a launch whose record was never written (a failure in
between) stays held until ``drop``, or until a refusal makes ``Networks``
rebuild the network's part from the records and try again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from runtime.errors import RuntimeFailure
from runtime.network.attachment import Attachment, PortMapping
from runtime.network.ipam import AddressPool, Subnet
from runtime.records import ContainerRecord, NetworkRecord


@dataclass
class _Network:
    """One network's endpoints: its pool, who holds each address, the
    links its endpoints carry and the host ports they publish (only those
    that have any)."""

    pool: AddressPool
    holders: dict[IPv4Address, str] = field(default_factory=dict)
    addresses: dict[str, IPv4Address] = field(default_factory=dict)
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ports: dict[str, tuple[PortMapping, ...]] = field(default_factory=dict)

    def hold(self, container_id: str, address: IPv4Address, links: tuple[str, ...]) -> None:
        self.holders[address] = container_id
        self.addresses[container_id] = address
        if links:
            self.links[container_id] = links

    def release(self, container_id: str) -> IPv4Address | None:
        address = self.addresses.pop(container_id, None)
        self.links.pop(container_id, None)
        self.ports.pop(container_id, None)
        if address is not None and self.holders.get(address) == container_id:
            del self.holders[address]
            self.pool.release(address)
        return address


def _pool(record: NetworkRecord) -> AddressPool:
    subnet = Subnet.of(record.subnet, record.gateway)
    return AddressPool(subnet, (), record.ip_range, record.aux_addresses.values())


class Endpoints:
    """Not thread-safe on its own: ``Networks`` calls it under its lock."""

    def __init__(self) -> None:
        self._networks: dict[str, _Network] = {}

    def rebuild(
        self,
        networks: Iterable[NetworkRecord],
        live: Iterable[ContainerRecord],
        only: str | None = None,
    ) -> None:
        """From the records: every network's part, or ``only`` that one's.
        An address a record holds twice (records written before this rule)
        stays with the first; an address outside its subnet is ignored."""
        wanted = [n for n in networks if only is None or n.name == only]
        for record in wanted:
            self._networks[record.name] = _Network(_pool(record))
        for container in live:
            for net in container.spec.attachments():
                part = self._networks.get(net.network)
                if part is None or (only is not None and net.network != only):
                    continue
                address = IPv4Address(net.ip)
                if address in part.holders:
                    continue
                try:
                    part.pool.reserve(address)
                except RuntimeFailure:
                    continue  # InvalidArgument, AddressInUse: not this pool's to count
                part.hold(container.id, address, net.options.links)
                if net is container.spec.network and net.ports:
                    part.ports[container.id] = net.ports

    def known(self, network: str) -> bool:
        return network in self._networks

    def take(
        self, network: NetworkRecord, container_id: str, asked: Attachment
    ) -> tuple[Subnet, IPv4Address]:
        """``asked``'s address on ``network`` (its static one, or the lowest
        free), held for ``container_id``, which gives back what it held there
        first (a relaunch takes its own again).  AddressInUse,
        PoolExhausted: the caller decides whether the truth would differ."""
        part = self._networks.get(network.name)
        if part is None:
            part = self._networks[network.name] = _Network(_pool(network))
        links, ports = part.links.get(container_id, ()), part.ports.get(container_id)
        previous = part.release(container_id)
        wanted = asked.options.ipv4_address
        try:
            address = part.pool.reserve(wanted, "ipv4_address") if wanted else part.pool.allocate()
        except BaseException:
            if previous is not None:  # it keeps what it had
                part.pool.reserve(previous)
                part.hold(container_id, previous, links)
                if ports:
                    part.ports[container_id] = ports
            raise
        part.hold(container_id, address, asked.options.links)
        return part.pool.subnet, address

    def hold_ports(self, network: str, container_id: str, ports: tuple[PortMapping, ...]) -> None:
        """The host ports ``container_id`` publishes through its address on
        ``network`` (taken first), given back with it."""
        part = self._networks.get(network)
        if part is not None and container_id in part.addresses and ports:
            part.ports[container_id] = ports

    def promised(self) -> list[PortMapping]:
        """Every host port the live containers publish."""
        return [p for part in self._networks.values() for held in part.ports.values() for p in held]

    def drop(self, network: str, container_id: str, address: str) -> None:
        """``container_id``'s address on ``network`` given back, if it is
        still ``address`` (a later take for it is left alone)."""
        part = self._networks.get(network)
        if part is not None and str(part.addresses.get(container_id, "")) == address:
            part.release(container_id)

    def holder(self, network: str, address: str) -> str | None:
        part = self._networks.get(network)
        return None if part is None else part.holders.get(IPv4Address(address))

    def holding(self, container_id: str) -> list[tuple[str, str]]:
        """(network, address) of every address ``container_id`` holds."""
        return [
            (name, str(part.addresses[container_id]))
            for name, part in self._networks.items()
            if container_id in part.addresses
        ]

    def linked_by(self, network: str, container_id: str, refs: Iterable[str]) -> list[str]:
        """What the others' links on ``network`` call a container known by
        ``refs`` (its name, id, short id): each link's alias, or the name it
        was given (``name[:alias]``)."""
        part = self._networks.get(network)
        if part is None:
            return []
        known = set(refs)
        names = []
        for holder, links in part.links.items():
            if holder == container_id:
                continue
            for link in links:
                name, _, alias = link.partition(":")
                if name in known:
                    names.append(alias or name)
        return names

    def forget_network(self, name: str) -> None:
        self._networks.pop(name, None)
