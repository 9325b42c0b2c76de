"""A container's place on a network, as recorded in its spec and launched.

    NONE, HOST, BRIDGE   the modes: only ``lo``; the host's namespace (no
                         CLONE_NEWNET); a veth on a bridge (``bridge`` or a
                         user network)
    PortMapping          one published port: container port, protocol, host
                         ip and port (0 in a request: the service picks one)
    EndpointOptions      what a user may ask of one endpoint beyond its network
                         and aliases: a static IPv4 address, a MAC, driver
                         options, links (``name:alias``)
    Attachment           what the runtime chose under the lock that inserts
                         the record: address/prefix, gateway, MAC, the host
                         end's name, the container's (``eth0``, ``eth1``…),
                         the bridge, its MTU, ports, aliases, the options
    ETC_FILES            the /etc files a bridge-attached container gets
                         from its dir (etcfiles.py), bind-mounted read-only

Plain frozen dataclasses of strings and numbers, so that ``spec.to_dict`` /
``from_dict`` carry them through the records and the launcher's protocol
like the rest of a ``ContainerSpec``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Interface

NONE = "none"
HOST = "host"
BRIDGE = "bridge"
#: The names no user network may take (Docker's predefined networks).
BUILTIN_NETWORKS = (NONE, HOST, BRIDGE)
PROTOCOLS = ("tcp", "udp")
ETC_FILES = ("resolv.conf", "hosts", "hostname")
#: The container's end of the pair: its first network's; the others' are
#: ``eth1``, ``eth2``… (the lowest free number when connected).
CONTAINER_IFNAME = "eth0"
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
LINK_RE = re.compile(r"[^:]+(:[^:]+)?")


def check_mac(value: str) -> str:
    """A unicast MAC, lower-cased (a multicast one is refused by the
    kernel for a device: eth_prepare_mac_addr_change, EADDRNOTAVAIL)."""
    mac = value.lower()
    if not MAC_RE.fullmatch(mac):
        raise ValueError(f"{value!r} is not a MAC address (xx:xx:xx:xx:xx:xx)")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{value} is a multicast address")
    return mac


@dataclass(frozen=True)
class EndpointOptions:
    """An endpoint's asked-for settings: ``ipv4_address`` a static address
    in the network's subnet (Docker's ``IPAMConfig.IPv4Address``),
    ``mac_address`` instead of the one derived from the address,
    ``driver_opts`` kept and shown (the bridge driver reads none), ``links``
    ``container[:alias]`` (runtime/networks.py: aliases on a user network,
    /etc/hosts lines on ``bridge``), ``link_local_ips`` more addresses on
    the interface (Docker's ``LinkLocalIPs``, each a /16 as RFC 3927's)."""

    ipv4_address: str = ""
    mac_address: str = ""
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    links: tuple[str, ...] = ()
    link_local_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for address in (self.ipv4_address, *self.link_local_ips):
            if address:
                IPv4Address(address)  # ValueError naming the value
        if self.mac_address:
            object.__setattr__(self, "mac_address", check_mac(self.mac_address))
        for link in self.links:
            if not LINK_RE.fullmatch(link):
                raise ValueError(f"link {link!r} is not container[:alias]")


@dataclass(frozen=True)
class PortMapping:
    """``host_ip``:``host_port`` on the host → ``container_port`` inside."""

    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    host_ip: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not 1 <= self.container_port <= 65535:
            raise ValueError(f"container_port {self.container_port} is not a port (1-65535)")
        if not 0 <= self.host_port <= 65535:
            raise ValueError(f"host_port {self.host_port} is not a port (0-65535)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        IPv4Address(self.host_ip)  # ValueError naming the value

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class Attachment:
    """A container's network as launched.

    ``mode`` NONE and HOST carry nothing else.  With BRIDGE, ``network`` is
    the network's name, ``bridge`` its Linux bridge, ``address`` the
    container's ``a.b.c.d/prefix`` on ``eth0``, ``gateway`` the bridge's
    address (and the embedded DNS server's on a user network), ``mac``
    derived from the address (ipam.mac_for), ``veth`` the host end's name
    (after the container's id: a name the kernel may still be dropping is
    never reused), ``mtu`` the bridge's; ``ports`` are the actual host
    ports; ``etc_dir`` holds the three ``ETC_FILES`` the child binds over
    /etc; ``ifname`` the container's end; ``options`` what the user asked.
    An ``address`` of ``""`` on a bridge: disconnected (the first network
    keeps its place, and its /etc files, in the spec)."""

    mode: str = NONE
    network: str = NONE
    bridge: str = ""
    address: str = ""
    gateway: str = ""
    mac: str = ""
    veth: str = ""
    mtu: int = 1500
    ports: tuple[PortMapping, ...] = ()
    aliases: tuple[str, ...] = ()
    etc_dir: str = ""
    ifname: str = CONTAINER_IFNAME
    options: EndpointOptions = field(default_factory=EndpointOptions)

    @property
    def bridged(self) -> bool:
        return self.mode == BRIDGE

    @property
    def connected(self) -> bool:
        """On a bridge with an address (not disconnected)."""
        return self.mode == BRIDGE and bool(self.address)

    @property
    def interface(self) -> IPv4Interface:
        return _interface(self.address)

    @property
    def ip(self) -> str:
        return str(self.interface.ip) if self.address else ""

    @property
    def prefix(self) -> int:
        return self.interface.network.prefixlen if self.address else 0

    @property
    def link_local(self) -> tuple[IPv4Interface, ...]:
        return tuple(IPv4Interface(f"{a}/16") for a in self.options.link_local_ips)


@lru_cache(maxsize=4096)
def _interface(address: str) -> IPv4Interface:
    # Parsed once per address: a launch counts the addresses of every live
    # endpoint on its network (ipaddress's parsing was most of that).
    return IPv4Interface(address)


def veth_name(container_id: str, suffix: str = "") -> str:
    """``veth`` + 11 hex digits of the id: IFNAMSIZ holds 15 characters; a
    further network's (``suffix``: its number) trades digits of the id for
    ``x`` + the number."""
    if not suffix:
        return "veth" + container_id[:11]
    return "veth" + container_id[: 10 - len(suffix)] + "x" + suffix
