"""``Names``: what a container is called on its networks, in its /etc files
and in the embedded DNS.

    Names
    ├── write_etc   its resolv.conf, hosts and hostname from its endpoints
    │               (on a tmpfs: etcdir.py), rewritten in place (a container
    │               has them bound); a link on ``bridge`` is a hosts line
    └── add         its names on a user network (name, aliases, short id, and
                    what the others' links call it; what its own links call
                    them) in the DNS table
    endpoint_on     a container's endpoint on a network
    names_of        what it answers to there, as DNS and hosts(5) can carry it

``Networks`` (runtime/networks.py) calls these when a container is
launched, connected or restored; the links the others' endpoints carry come
from its in-memory index (``linked_by``, network/endpoints.py), so naming a
container reads no list of records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

from runtime.errors import InvalidArgument, NotFound
from runtime.network import etcfiles
from runtime.network.attachment import BRIDGE, ETC_FILES, Attachment
from runtime.network.control import ControlPlane
from runtime.network.dns import check_name
from runtime.network.etcdir import EtcDir
from runtime.records import EXITED, ContainerRecord, RecordStore

#: (network, container id, the container's names) -> what the others'
#: links on that network call it.
LinkedBy = Callable[[str, str, Iterable[str]], list[str]]


class Names:
    def __init__(
        self, records: RecordStore, control: ControlPlane, etc: EtcDir, linked_by: LinkedBy
    ) -> None:
        self.records = records
        self.control = control
        self.etc = etc
        self._linked_by = linked_by
        #: The host's resolv.conf, read again only when it changed.
        self._host_resolv = etcfiles.HostResolv()

    def add(self, record: ContainerRecord, net: Attachment) -> None:
        """Its names on a user network, and the links' (Docker makes a link
        there an alias of the linked container; ours is seen network-wide):
        those its own links give others, those others' links give it."""
        refs = (record.name, record.id, record.id[:12])
        names = names_of(record, net) + self._linked_by(net.network, record.id, refs)
        self.control.add_names(net.network, IPv4Address(net.ip), names)
        for link in net.options.links:
            name, _, alias = link.partition(":")
            found = self._linked(name, net.network)
            if found is not None and alias:
                self.control.add_names(net.network, IPv4Address(found[1].ip), [alias])

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
            names = [n for n in names_of(record, net) if n != hostname]
            hosts += etcfiles.host_line(IPv4Address(net.ip), [hostname, *names])
        hosts += self._link_lines(attached)
        files = {"resolv.conf": resolv, "hosts": hosts, "hostname": etcfiles.hostname(hostname)}
        for name in ETC_FILES:
            etcfiles.rewrite(os.path.join(first.etc_dir, name), files[name])

    def _link_lines(self, attached: tuple[Attachment, ...]) -> str:
        """``/etc/hosts`` lines of the links on ``bridge`` (Docker's legacy
        links; on a user network a link is an alias, see ``add``)."""
        lines = ""
        for net in attached:
            if net.network != BRIDGE:
                continue
            for link in net.options.links:
                name, _, alias = link.partition(":")
                found = self._linked(name, BRIDGE)
                if found is not None:
                    other, target = found
                    words = carried([alias or name, other.name, other.id[:12]])
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


def endpoint_on(record: ContainerRecord, network: str) -> Attachment | None:
    """The container's endpoint on ``network``, if it is connected there."""
    for attached in record.spec.attachments():
        if attached.network == network:
            return attached
    return None


def names_of(record: ContainerRecord, net: Attachment) -> list[str]:
    """What a container answers to on ``net``: name, aliases, short id."""
    return carried([record.name, *net.aliases, record.id[:12]])


def carried(wanted: list[str]) -> list[str]:
    """The names a DNS answer or a hosts(5) line can carry, once each."""
    names = []
    for name in dict.fromkeys(wanted):
        try:
            names.append(check_name(name))
        except (ValueError, InvalidArgument):
            continue  # a name DNS cannot carry (a 64-digit id): not resolvable by it
    return names
