"""``Connections``: a container joins or leaves a network after its create.

    connect      check, address (ipam), record the endpoint, then ask the
                 launcher to plug it (``eth1``…, or ``eth0`` again once the
                 first network was left) into the namespace of a created or
                 running container; names and /etc files follow
    disconnect   ask the launcher to unplug it (the host end deleted), then
                 record the endpoint gone; its ports, names, address freed

Record, then plug: the address is in the record before the interface
exists, so no other container can be handed it; a failed plug takes the
endpoint out of the record again.  Unplug, then record: a crash between
the two keeps an address that is no longer used until the container exits,
never frees one still on an interface.  An exited container's endpoints
are only recorded; its next start plugs them (launcher/spawn.py ``_plug``).
"""

from __future__ import annotations

from dataclasses import replace

from runtime.errors import Conflict, InvalidArgument, RuntimeFailure
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.layout import Layout
from runtime.network.attachment import (
    BRIDGE,
    CONTAINER_IFNAME,
    HOST,
    NONE,
    Attachment,
    EndpointOptions,
)
from runtime.network.names import endpoint_on
from runtime.network.rules import check_aliases, check_static
from runtime.networks import Networks
from runtime.records import EXITED, ContainerRecord, RecordStore
from runtime.spec import ContainerSpec, to_dict


class Connections:
    def __init__(
        self, layout: Layout, records: RecordStore, networks: Networks, launcher: LauncherClient
    ) -> None:
        self.layout = layout
        self.records = records
        self.networks = networks
        self.launcher = launcher

    def connect(
        self,
        ref: str,
        network: str,
        aliases: tuple[str, ...] = (),
        options: EndpointOptions | None = None,
    ) -> ContainerRecord:
        options = options or EndpointOptions()
        with self.networks.lock:
            record = self.records.resolve(ref)
            target = self.networks.get(network)
            _check_connectable(record, target.name)
            if target.name == BRIDGE and aliases:
                raise InvalidArgument("aliases", "aliases need a user network, not 'bridge'")
            check_aliases(aliases)
            check_static(target, options)
            before = record.spec
            asked = Attachment(
                mode=BRIDGE,
                network=target.name,
                aliases=aliases,
                options=options,
                ifname=_free_ifname(before),
                etc_dir=_etc_dir(before, self.networks.etc.path(record.id)),
            )
            attached = self.networks.address(record.id, asked)
            record = self.records.update(record.id, spec=_with(before, attached))
            if record.status == EXITED:
                self.networks.release(record.id, attached)  # taken again at its start
        if record.status != EXITED:
            try:
                self.launcher.request(protocol.Connect(record.id, to_dict(attached)))
            except RuntimeFailure:
                self.records.update(record.id, spec=before)
                self.networks.release(record.id, attached)
                raise
        self.networks.joined(record, attached)
        if self.records.resolve(record.id).status == EXITED and record.status != EXITED:
            # It exited meanwhile: its exit may have come before the names.
            self.networks.left(record, attached)
        return record

    def disconnect(self, ref: str, network: str, force: bool = False) -> ContainerRecord:
        """``force``: a launcher that cannot unplug is no error (the endpoint
        is forgotten anyway); a container not on the network is one either
        way, as Docker's."""
        record = self.records.resolve(ref)
        target = self.networks.get(network)
        if target.name in (NONE, HOST):
            raise InvalidArgument("network", f"a container cannot leave network {target.name!r}")
        attached = endpoint_on(record, target.name)
        if attached is None:
            raise Conflict(f"container {record.name} is not connected to network {target.name!r}")
        if record.status != EXITED:
            try:
                self.launcher.request(protocol.Disconnect(record.id, attached.veth))
            except RuntimeFailure:
                if not force:
                    raise
        with self.networks.lock:
            record = self.records.resolve(record.id)
            record = self.records.update(record.id, spec=_without(record.spec, attached))
        self.networks.left(record, attached)
        self.networks.write_etc(record)
        return record


def _check_connectable(record: ContainerRecord, network: str) -> None:
    """Docker's rules: ``host`` and ``none`` take no second network, and a
    container is on a network once (daemon/container_operations.go)."""
    first = record.spec.network
    if network in (NONE, HOST) or first is None or not first.bridged:
        mode = first.network if first is not None else NONE
        raise InvalidArgument(
            "network",
            f"container {record.name} is on network {mode!r}, which takes no other "
            f"network; cannot connect it to {network!r}",
        )
    if endpoint_on(record, network) is not None:
        raise Conflict(f"container {record.name} is already connected to network {network!r}")


def _free_ifname(spec: ContainerSpec) -> str:
    used = {a.ifname for a in spec.attachments()}
    number = 0
    while f"eth{number}" in used:
        number += 1
    return f"eth{number}"


def _etc_dir(spec: ContainerSpec, fresh: str) -> str:
    """The first network's /etc files' dir, or ``fresh`` for a first one."""
    first = spec.network
    return first.etc_dir if first is not None and first.etc_dir else fresh


def _with(spec: ContainerSpec, attached: Attachment) -> ContainerSpec:
    """The first network's slot when it was left (``eth0`` is free again),
    else one more endpoint."""
    first = spec.network
    if attached.ifname == CONTAINER_IFNAME and first is not None and not first.connected:
        return replace(spec, network=attached)
    return replace(spec, endpoints=(*(e for e in spec.endpoints if e.connected), attached))


def _without(spec: ContainerSpec, attached: Attachment) -> ContainerSpec:
    """The first network keeps its place, disconnected (its /etc dir stays
    bound in the container); a further one goes."""
    first = spec.network
    if first is not None and first.ifname == attached.ifname and first.connected:
        left = replace(first, address="", mac="", ports=(), aliases=(), options=EndpointOptions())
        return replace(spec, network=left)
    return replace(spec, endpoints=tuple(e for e in spec.endpoints if e.ifname != attached.ifname))
