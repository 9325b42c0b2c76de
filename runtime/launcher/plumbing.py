"""The launcher's part of a container's network (docs/networking.md).

    Plumber
    ├── hold_ports   before the clone: bind the published host ports (a clash
    │                refuses the launch before anything is made)
    ├── plug         between clone(2) and the joined byte, while the child
    │                builds its root: the bridge on first use, the veth pair
    │                with its peer born in the child's namespace as eth0,
    │                eth0 addressed, up and routed (one sendmsg on a socket
    │                opened there), hairpin with published ports
    ├── hotplug      a further network (eth1…), at a launch or connected
    │                later to a created or running container: the same, but
    │                no default route (the first network's stays the way out)
    ├── unplug       a disconnect: the host end deleted, the peer with it
    ├── release      at reap: the held ports go (the kernel drops the pair
    │                with the namespace, so there is no netlink call)
    ├── park         at a pooled child's fill (runtime/launcher/pool.py): a
    │                veth made ahead, its peer eth0 up in the child's
    │                namespace (no carrier), the host end down on no bridge
    │                (``Parked``)
    ├── plug_parked  at its claim: the host end named after the container
    │                (an alternative name), up on the bridge
    └── (eth0's MAC, MTU, address and route: the claimed child's own step,
                     runtime/pooled.py ``configure_eth0``, while the launcher
                     plugs the host end)

A parked pair costs the claim one request of the launcher's instead of the
pair's creation (the kernel's device registration, ~1 ms of CPU,
docs/networking.md), and one of the child's, which runs on another CPU
meanwhile.  It needs no undoing either: the kernel drops the pair with the
namespace.

One netlink socket for the launcher's life, opened on first use in the
launcher's own namespace (the host's), and the bridges it has seen, by name.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from runtime.errors import InvalidArgument
from runtime.launcher.protocol import ErrorKind, RequestError
from runtime.network import netlink
from runtime.network.attachment import CONTAINER_IFNAME, Attachment
from runtime.network.firewall import Protocol, route_localnet
from runtime.network.ports import Binding, PortClash, PortHolder

log = logging.getLogger("mydocker.launcher")

#: A parked host end's name: ``mp`` + the launcher's pid + a count, in hex
#: (IFNAMSIZ: 15 characters), never a container's (``veth…``).
PARKED_PREFIX = "mp"


@dataclass(frozen=True)
class Parked:
    """A veth made ahead for a pooled child: the host end's index (down, on
    no bridge), the peer's index in the child's namespace."""

    host_index: int
    peer_index: int


class Plumber:
    def __init__(self, ports: PortHolder | None = None) -> None:
        self.ports = ports if ports is not None else PortHolder()
        self._nl: netlink.Netlink | None = None
        #: bridge name -> (index, mtu), as last seen
        self._bridges: dict[str, tuple[int, int]] = {}
        self._parked_names = itertools.count(1)

    @property
    def nl(self) -> netlink.Netlink:
        if self._nl is None:
            self._nl = netlink.Netlink()
        return self._nl

    def hold_ports(self, container_id: str, net: Attachment) -> None:
        """Bind every published port of ``net`` for the container, or none."""
        wanted = [
            Binding(Protocol(p.protocol), IPv4Address(p.host_ip), p.host_port) for p in net.ports
        ]
        try:
            self.ports.reserve(container_id, wanted)
        except PortClash as err:
            raise RequestError(ErrorKind.INVALID_STATE, str(err)) from err
        except InvalidArgument as err:
            raise RequestError(ErrorKind.FAILED, f"ports: {err}") from err

    def release(self, container_id: str) -> None:
        self.ports.release(container_id)

    def plug(self, pid: int, net: Attachment) -> None:
        """The veth between the bridge and the child's namespace.

        ``pid`` is safe to name: the launcher is the child's parent and has
        not reaped it.  The fd of its namespace is closed at once: an open
        one would keep the namespace, and so the pair, alive after the
        container's death."""
        try:
            self._plug(pid, net)
        except OSError as err:
            raise RequestError(ErrorKind.FAILED, f"network {net.network}: {err}") from err

    def hotplug(self, pid: int, net: Attachment) -> None:
        """``plug`` for a network beyond the first, into a child at launch
        or a created or running container (its ``ifname``: eth1…)."""
        self.plug(pid, net)

    def unplug(self, veth: str) -> None:
        """Deleting either end of a veth deletes both (veth(4))."""
        try:
            netlink.delete_link(self.nl, veth)
        except OSError as err:
            if err.errno != errno.ENODEV:
                raise RequestError(ErrorKind.FAILED, f"disconnect {veth}: {err}") from err

    def park(self, pid: int) -> Parked:
        """A veth for the child ``pid`` (not reaped: its pid is safe to name)
        before any container is known: the peer is born in its namespace as
        eth0 and brought up there without IPv6 link-local addresses, the host
        end stays down on no bridge, so eth0 has no carrier and nothing
        reaches the child through it until a claim plugs it.  The socket
        opened in its namespace for that is closed at once: the child
        configures eth0 itself at its claim (pooled.py)."""
        name = f"{PARKED_PREFIX}{os.getpid():x}x{next(self._parked_names) % (1 << 24):x}"
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            host_end = netlink.create_veth(
                self.nl, name, peer_name=CONTAINER_IFNAME, peer_netns_fd=fd, up=False
            )
            inside = netlink.open_in_namespace(fd)
        finally:
            os.close(fd)
        with inside:
            if host_end is None or not host_end.link:  # a kernel older than 6.2
                host_end = netlink.get_link(self.nl, name)
                peer = netlink.get_link(inside, CONTAINER_IFNAME).index
            else:
                peer = host_end.link
            netlink.prepare_parked(inside, peer)
        return Parked(host_end.index, peer)

    def plug_parked(self, parked: Parked, net: Attachment) -> None:
        """``plug`` with the pair made at the fill: the host end answers to
        ``net.veth`` (its alternative name), up on the bridge (once more
        after a bridge made again, as in ``plug``), with hairpin for
        published ports.  eth0 is the child's to configure meanwhile
        (pooled.py ``configure_eth0``)."""
        try:
            index, mtu = self._bridge(net)
            try:
                netlink.adopt_veth(self.nl, parked.host_index, net.veth, mtu, index)
            except OSError:
                self._bridges.pop(net.bridge, None)
                index, mtu = self._bridge(net)
                netlink.adopt_veth(self.nl, parked.host_index, net.veth, mtu, index)
            if net.ports:
                netlink.set_hairpin(self.nl, parked.host_index)
        except OSError as err:
            raise RequestError(ErrorKind.FAILED, f"network {net.network}: {err}") from err

    def _plug(self, pid: int, net: Attachment) -> None:
        index, mtu = self._bridge(net)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                host_end = self._veth(net, fd, index, mtu)
            except OSError:
                # The bridge we knew may be gone (removed and made again):
                # look it up afresh, once.
                self._bridges.pop(net.bridge, None)
                index, mtu = self._bridge(net)
                host_end = self._veth(net, fd, index, mtu)
            self._configure(net, fd, host_end)
        finally:
            os.close(fd)
        if net.ports:
            veth = host_end or netlink.get_link(self.nl, net.veth)
            netlink.set_hairpin(self.nl, veth.index)

    def _veth(self, net: Attachment, fd: int, index: int, mtu: int) -> netlink.Link | None:
        return netlink.create_veth(
            self.nl,
            net.veth,
            peer_name=net.ifname,
            peer_netns_fd=fd,
            peer_mac=net.mac,
            mtu=mtu,
            master=index,
        )

    @staticmethod
    def _configure(net: Attachment, fd: int, host_end: netlink.Link | None) -> None:
        """eth0's address, up, default route: one sendmsg on a socket opened
        in the child's namespace (a socket acts on the namespace it was made
        in), while the child builds its root.  The echoed host end names the
        peer's index (IFLA_LINK); a kernel that does not echo costs a lookup.
        A further network's end (eth1…) gets its address and up, no route:
        the first network's gateway stays the way out, as Docker's."""
        with netlink.open_in_namespace(fd) as inside:
            if host_end is not None and host_end.link:
                peer = host_end.link
            else:
                peer = netlink.get_link(inside, net.ifname).index
            for extra in net.link_local:  # Docker's LinkLocalIPs
                netlink.add_address(inside, peer, extra)
            if net.ifname == CONTAINER_IFNAME:
                netlink.configure_link(inside, peer, net.interface, net.gateway)
            else:
                netlink.add_address(inside, peer, net.interface)
                netlink.set_up(inside, peer)

    def _bridge(self, net: Attachment) -> tuple[int, int]:
        """The bridge's (index, mtu): made on first use, with the gateway's
        address, and route_localnet for published ports on 127.0.0.1."""
        known = self._bridges.get(net.bridge)
        if known is not None:
            return known
        try:
            link = netlink.get_link(self.nl, net.bridge)
        except OSError as err:
            if err.errno != errno.ENODEV:
                raise
            link = netlink.create_bridge(self.nl, net.bridge, mtu=net.mtu)
            log.info("created bridge %s for network %s", net.bridge, net.network)
        gateway = IPv4Interface(f"{net.gateway}/{net.prefix}")
        try:
            netlink.add_address(self.nl, link.index, gateway)
        except FileExistsError:
            pass
        route_localnet(net.bridge)
        self._bridges[net.bridge] = (link.index, link.mtu)
        return link.index, link.mtu
