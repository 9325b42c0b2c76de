"""The launcher's part of a container's network (docs/networking.md).

    Plumber
    ├── hold_ports   before the clone: bind the published host ports (a clash
    │                refuses the launch before anything is made)
    ├── plug         between clone(2) and the go byte: the bridge on first
    │                use, then the veth pair with its peer born in the
    │                child's namespace as eth0, hairpin with published ports
    ├── hotplug      a further network (eth1…), or one connected later: the
    │                pair as ``plug``, then the peer's address, up (and the
    │                default route on eth0) through a socket in its namespace
    ├── unplug       a disconnect: the host end deleted, the peer with it
    └── release      at reap: the held ports go (the kernel drops the pair
                     with the namespace, so there is no netlink call)

One netlink socket for the launcher's life, opened on first use in the
launcher's own namespace (the host's), and the bridges it has seen, by name.
"""

from __future__ import annotations

import errno
import logging
import os
from ipaddress import IPv4Address, IPv4Interface

from runtime.errors import InvalidArgument
from runtime.launcher.protocol import ErrorKind, RequestError
from runtime.network import netlink
from runtime.network.attachment import CONTAINER_IFNAME, Attachment
from runtime.network.firewall import Protocol, route_localnet
from runtime.network.ports import Binding, PortClash, PortHolder

log = logging.getLogger("mydocker.launcher")


class Plumber:
    def __init__(self, ports: PortHolder | None = None) -> None:
        self.ports = ports if ports is not None else PortHolder()
        self._nl: netlink.Netlink | None = None
        #: bridge name -> (index, mtu), as last seen
        self._bridges: dict[str, tuple[int, int]] = {}

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
        """``plug``, then the container's end configured from here: the
        launcher is single-threaded, so it may setns(2) there and back
        (netlink.open_in_namespace) while nothing else runs."""
        try:
            self._plug(pid, net, configure=True)
        except OSError as err:
            raise RequestError(ErrorKind.FAILED, f"network {net.network}: {err}") from err

    def unplug(self, veth: str) -> None:
        """Deleting either end of a veth deletes both (veth(4))."""
        try:
            netlink.delete_link(self.nl, veth)
        except OSError as err:
            if err.errno != errno.ENODEV:
                raise RequestError(ErrorKind.FAILED, f"disconnect {veth}: {err}") from err

    def _plug(self, pid: int, net: Attachment, configure: bool = False) -> None:
        index, mtu = self._bridge(net)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                self._veth(net, fd, index, mtu)
            except OSError:
                # The bridge we knew may be gone (removed and made again):
                # look it up afresh, once.
                self._bridges.pop(net.bridge, None)
                index, mtu = self._bridge(net)
                self._veth(net, fd, index, mtu)
            if configure:
                _configure_inside(fd, net)
        finally:
            os.close(fd)
        if net.ports:
            veth = netlink.get_link(self.nl, net.veth)
            netlink.set_hairpin(self.nl, veth.index)

    def _veth(self, net: Attachment, fd: int, index: int, mtu: int) -> None:
        netlink.create_veth(
            self.nl,
            net.veth,
            peer_name=net.ifname,
            peer_netns_fd=fd,
            peer_mac=net.mac,
            mtu=mtu,
            master=index,
        )

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


def _configure_inside(netns_fd: int, net: Attachment) -> None:
    """The container's end, as the child does for eth0 (child.py ``_eth0``):
    address, up, and the default route on eth0 only (the first network's
    gateway stays the container's way out, as Docker's)."""
    with netlink.open_in_namespace(netns_fd) as inside:
        link = netlink.get_link(inside, net.ifname)
        for address in (net.interface, *net.link_local):
            netlink.add_address(inside, link.index, address)
        netlink.set_up(inside, link.index)
        if net.ifname == CONTAINER_IFNAME:
            netlink.add_default_route(inside, net.gateway)
