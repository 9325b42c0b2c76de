"""A container's place on a network, as recorded in its spec and launched.

    NONE, HOST, BRIDGE   the modes: only ``lo``; the host's namespace (no
                         CLONE_NEWNET); a veth on a bridge (``bridge`` or a
                         user network)
    PortMapping          one published port: container port, protocol, host
                         ip and port (0 in a request: the service picks one)
    Attachment           what the runtime chose under the lock that inserts
                         the record: address/prefix, gateway, MAC, the host
                         end's name, the bridge, its MTU, ports and aliases
    ETC_FILES            the /etc files a bridge-attached container gets
                         from its dir (etcfiles.py), bind-mounted read-only

Plain frozen dataclasses of strings and numbers, so that ``spec.to_dict`` /
``from_dict`` carry them through the records and the launcher's protocol
like the rest of a ``ContainerSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

NONE = "none"
HOST = "host"
BRIDGE = "bridge"
#: The names no user network may take (Docker's predefined networks).
BUILTIN_NETWORKS = (NONE, HOST, BRIDGE)
PROTOCOLS = ("tcp", "udp")
ETC_FILES = ("resolv.conf", "hosts", "hostname")
#: The container's end of the pair.
CONTAINER_IFNAME = "eth0"


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
    /etc."""

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

    @property
    def bridged(self) -> bool:
        return self.mode == BRIDGE

    @property
    def interface(self) -> IPv4Interface:
        return IPv4Interface(self.address)

    @property
    def ip(self) -> str:
        return str(self.interface.ip) if self.address else ""

    @property
    def prefix(self) -> int:
        return self.interface.network.prefixlen if self.address else 0


def veth_name(container_id: str) -> str:
    """``veth`` + 11 hex digits of the id: IFNAMSIZ holds 15 characters."""
    return "veth" + container_id[:11]
