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
    │                veth made ahead, its peer eth0 down in the child's
    │                namespace, the host end up on the bridge the last claim
    │                used (or down on none before any), and a netlink socket
    │                opened in the child's namespace kept (``Parked``)
    └── plug_parked  at its claim: eth0's MAC, MTU, up, address and route in
                     one sendmsg on the kept socket, which is closed then;
                     the host end named after the container (an alternative
                     name) and up on the container's bridge: when parked on
                     it, only the name is left, sent after the joined byte

A parked pair costs the claim two requests of the launcher's instead of the
pair's creation (the kernel's device registration, ~1 ms of CPU) and its
enslaving (``br_add_if``, 0.2-0.4 ms), both at the fill; they run while the
child, on another CPU, takes its spec and runs its claim steps, which no
longer include a netlink socket of their own (~1.9 ms in a just-claimed
child: docs/networking.md).  Until the claim eth0 is down, so its host end
has no carrier and its bridge port is disabled: nothing reaches the child.
The pair needs no undoing: the kernel drops it with the namespace (the kept
socket is closed when the child goes, ``Parked.close``).

One netlink socket for the launcher's life, opened on first use in the
launcher's own namespace (the host's), and the bridges it has seen, by name.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
from collections.abc import Callable
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
    """A veth made ahead for a pooled child: the host end's index, the
    peer's index in the child's namespace (eth0, down), a netlink socket
    there for the claim, and the bridge the host end is on (None: down, on
    none)."""

    host_index: int
    peer_index: int
    inside: netlink.Netlink
    bridge: str | None = None

    def close(self) -> None:
        """The socket (it holds the child's namespace, and so the pair):
        after the claim's use, or when the child goes unclaimed."""
        self.inside.close()


class Plumber:
    def __init__(self, ports: PortHolder | None = None) -> None:
        self.ports = ports if ports is not None else PortHolder()
        self._nl: netlink.Netlink | None = None
        #: bridge name -> (index, mtu), as last seen
        self._bridges: dict[str, tuple[int, int]] = {}
        self._parked_names = itertools.count(1)
        #: The bridge of the last claim: the next parked ends go on it.
        self._last_bridge: str | None = None

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
        eth0 and stays down there (no IPv6 link-local address once up), the
        host end goes up on the bridge of the last claim, sized as it
        (before any claim: down, on none).  Without carrier its bridge port
        forwards nothing until a claim brings eth0 up."""
        name = f"{PARKED_PREFIX}{os.getpid():x}x{next(self._parked_names) % (1 << 24):x}"
        bridge = self._last_bridge
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            host_end, bridge = self._parked_pair(name, fd, bridge)
            inside = netlink.open_in_namespace(fd)
        finally:
            os.close(fd)
        try:
            if host_end is None or not host_end.link:  # a kernel older than 6.2
                host_end = netlink.get_link(self.nl, name)
                peer = netlink.get_link(inside, CONTAINER_IFNAME).index
            else:
                peer = host_end.link
            netlink.quiet_parked(inside, peer)
        except BaseException:
            inside.close()
            raise
        return Parked(host_end.index, peer, inside, bridge)

    def _parked_pair(
        self, name: str, fd: int, bridge: str | None
    ) -> tuple[netlink.Link | None, str | None]:
        """The pair, its host end up on ``bridge`` (as last seen) if it is
        known; a bridge gone meanwhile is forgotten and the end parked on
        none (the claim plugs it)."""
        if bridge is not None and bridge in self._bridges:
            index, mtu = self._bridges[bridge]
            try:
                pair = netlink.create_veth(
                    self.nl,
                    name,
                    peer_name=CONTAINER_IFNAME,
                    peer_netns_fd=fd,
                    mtu=mtu,
                    master=index,
                )
                return pair, bridge
            except OSError as err:
                log.info("parking on %s failed (%s): parked on no bridge", bridge, err)
                self._bridges.pop(bridge, None)
                self._last_bridge = None
        pair = netlink.create_veth(
            self.nl, name, peer_name=CONTAINER_IFNAME, peer_netns_fd=fd, up=False
        )
        return pair, None

    def plug_parked(
        self, parked: Parked, net: Attachment, defer: bool = False
    ) -> Callable[[], None] | None:
        """``plug`` with the pair made at the fill: the host end answers to
        ``net.veth`` (its alternative name), up on the bridge (once more
        after a bridge made again, as in ``plug``), with hairpin for
        published ports; then eth0's MAC, MTU, up, address and route on the
        socket kept in the child's namespace, which is closed.

        With ``defer`` (the joined byte follows in this loop turn), an end
        parked on ``net``'s bridge without ports is only named: what is
        returned does that (and the rest of ``adopt_veth``, no-ops there)
        once the child was released, before the reply; the command does
        not need the name."""
        deferred = defer and parked.bridge == net.bridge and not net.ports
        try:
            if not deferred:
                self._adopt(parked, net)
            if net.ports:
                netlink.set_hairpin(self.nl, parked.host_index)
            netlink.configure_parked(
                parked.inside,
                parked.peer_index,
                net.interface,
                net.gateway,
                net.mac,
                self._bridge(net)[1],
                net.link_local,
            )
            self._last_bridge = net.bridge
        except OSError as err:
            raise RequestError(ErrorKind.FAILED, f"network {net.network}: {err}") from err
        finally:
            parked.close()
        return (lambda: self._name(parked, net)) if deferred else None

    def _adopt(self, parked: Parked, net: Attachment) -> None:
        index, mtu = self._bridge(net)
        try:
            netlink.adopt_veth(self.nl, parked.host_index, net.veth, mtu, index)
        except OSError:
            self._bridges.pop(net.bridge, None)
            index, mtu = self._bridge(net)
            netlink.adopt_veth(self.nl, parked.host_index, net.veth, mtu, index)

    def _name(self, parked: Parked, net: Attachment) -> None:
        """The deferred part of ``plug_parked``: the container runs by now,
        so a failure is logged, not answered."""
        try:
            self._adopt(parked, net)
        except OSError as err:
            log.error("naming %s's host end %s failed: %s", net.network, net.veth, err)

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
        if net.ifname == CONTAINER_IFNAME:
            self._last_bridge = net.bridge  # where the next parked ends wait
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
