"""The service's firewall: one nftables table of its own, ``inet mydocker``.

    Protocol         tcp or udp
    Network          a bridge network as the firewall sees it: bridge, subnet, gateway, internal
    PublishedPort    host ip:port/proto → container ip:port
    FirewallState    the desired state: networks and published ports
    render           the state → one nft script that replaces the table atomically
    render_ports     port changes → one small script of map element updates
    TEARDOWN         the script that removes the table (and nothing else)
    Firewall         apply(state), publish(ports), unpublish(ports), teardown()
    route_localnet   /proc/sys/net/ipv4/conf/<bridge>/route_localnet = 1

Everything lives in the table ``inet mydocker`` (the inet family has NAT hooks
since Linux 5.2, so no ``ip`` table is needed): the service never uses
iptables, never flushes the ruleset, and never touches a table it did not
write.  ``apply`` replaces the whole table in one transaction (``table`` +
``delete table`` + its contents: nft(8), "the whole ruleset is applied
atomically"), so packets see either the old rules or the new ones.  A
container's ports are elements of two maps; publishing or unpublishing them
is one ``add element``/``delete element`` command, not a rebuild.

What the rules do (docs/networking.md, "Firewall", has the listing):

* masquerade what leaves a non-internal network's subnet through any other
  interface (Docker's ``-s SUBNET ! -o BRIDGE -j MASQUERADE``);
* forward: drop between two different bridges (isolation), and anything in
  or out of an internal network's bridge that is not the bridge itself; input:
  an internal network reaches only its gateway's address (the DNS server);
* published ports: DNAT in prerouting (from elsewhere) and in output (from
  the host itself, 127.0.0.1 included) when the destination is a local address
  (``fib daddr type local``, Docker's ``-m addrtype --dst-type LOCAL``);
  ``route_localnet`` on the bridge lets a 127.0.0.1-sourced packet be routed
  out of it (ip-sysctl.rst), and a masquerade gives it the bridge's address so
  the container's reply comes back; a container reaching a published port of
  its own network through the host (hairpin) is masqueraded too.

Our base chains only drop or NAT; their policy is accept, so what other
tables decide (a host firewall) still applies: an accept here is not final.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from runtime.errors import InvalidArgument
from runtime.network.nftables import Libnftables, Nft

TABLE = "mydocker"
FAMILY = "inet"
ANY = IPv4Address("0.0.0.0")

# A bridge name goes into the script between quotes: IFNAMSIZ (16 with the
# NUL) and nothing nft would read as syntax.
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class Protocol(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True)
class Network:
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    internal: bool = False

    def __post_init__(self) -> None:
        if not _BRIDGE_NAME.fullmatch(self.bridge):
            raise InvalidArgument("bridge", f"{self.bridge!r} is not a bridge name")
        if self.gateway not in self.subnet:
            raise InvalidArgument("gateway", f"{self.gateway} is not in {self.subnet}")


@dataclass(frozen=True)
class PublishedPort:
    """``host_ip`` 0.0.0.0 means every address of the host, 127.0.0.1 included."""

    protocol: Protocol
    host_ip: IPv4Address
    host_port: int
    container_ip: IPv4Address
    container_port: int

    def __post_init__(self) -> None:
        for name in ("host_port", "container_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise InvalidArgument(name, f"{port} is not a port (1-65535)")

    @property
    def _map(self) -> str:
        return "publish_any" if self.host_ip == ANY else "publish_at"

    @property
    def _key(self) -> str:
        key = f"{self.protocol} . {self.host_port}"
        return key if self.host_ip == ANY else f"{self.host_ip} . {key}"

    @property
    def _element(self) -> str:
        return f"{self._key} : {self.container_ip} . {self.container_port}"


@dataclass(frozen=True)
class FirewallState:
    networks: tuple[Network, ...] = ()
    ports: tuple[PublishedPort, ...] = ()


def _elements(items: Iterable[str]) -> str:
    listed = ", ".join(items)
    return f"elements = {{ {listed} }}" if listed else ""


def render(state: FirewallState) -> str:
    """The whole table as one script: applied with nft, it replaces any
    ``inet mydocker`` there was (or creates it) in one transaction."""
    t = f"{FAMILY} {TABLE}"
    bridges = _elements(f'"{n.bridge}"' for n in state.networks)
    any_ports = _elements(p._element for p in state.ports if p.host_ip == ANY)
    at_ports = _elements(p._element for p in state.ports if p.host_ip != ANY)
    postrouting, forward, inputs = _network_rules(state.networks)
    lines = [
        # `table` first so that `delete table` cannot fail on a first apply.
        f"table {t}",
        f"delete table {t}",
        f"table {t} {{",
        "  set bridges {",
        "    type ifname",
        f"    {bridges}",
        "  }",
        "  map publish_any {",
        "    type inet_proto . inet_service : ipv4_addr . inet_service",
        f"    {any_ports}",
        "  }",
        "  map publish_at {",
        "    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
        f"    {at_ports}",
        "  }",
        "  chain publish {",
        "    dnat ip to ip daddr . meta l4proto . th dport map @publish_at",
        "    dnat ip to meta l4proto . th dport map @publish_any",
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    meta nfproto ipv4 fib daddr type local goto publish",
        "  }",
        "  chain output {",
        # nft 1.0.6 refuses the name `dstnat` in an output hook: its value.
        "    type nat hook output priority -100; policy accept;",
        "    meta nfproto ipv4 fib daddr type local goto publish",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {rule}" for rule in postrouting),
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f"    {rule}" for rule in forward),
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        *(f"    {rule}" for rule in inputs),
        "  }",
        "}",
    ]
    return "\n".join(line for line in lines if line.strip()) + "\n"


def _network_rules(networks: Iterable[Network]) -> tuple[list[str], list[str], list[str]]:
    """The postrouting, forward and input rules that the networks need."""
    postrouting = [
        # A published port reached from the host through 127.0.0.1: give the
        # packet the bridge's address, or the container answers to its own lo.
        "ip saddr 127.0.0.0/8 oifname @bridges masquerade",
    ]
    forward = []
    inputs = []
    for n in networks:
        br = f'"{n.bridge}"'
        if n.internal:
            # No egress and no ingress: only the bridge itself (its own
            # containers, switched) and, below, its gateway (the DNS server).
            forward.append(f"iifname {br} oifname != {br} drop")
            forward.append(f"oifname {br} iifname != {br} drop")
            inputs.append(f"iifname {br} ip daddr != {n.gateway} drop")
        else:
            postrouting.append(f"ip saddr {n.subnet} oifname != {br} masquerade")
            # Hairpin: a container reaching a published port of a container
            # on its own bridge through a host address; without this the
            # reply would go straight back over the bridge, from an address
            # the client did not call.
            postrouting.append(f"ct status dnat ip saddr {n.subnet} oifname {br} masquerade")
            forward.append(f"iifname {br} oifname != {br} oifname @bridges drop")
    return postrouting, forward, inputs


def render_ports(add: Iterable[PublishedPort] = (), remove: Iterable[PublishedPort] = ()) -> str:
    """Element updates of the two maps, in one transaction."""
    lines = [f"delete element {FAMILY} {TABLE} {p._map} {{ {p._key} }}" for p in remove]
    lines += [f"add element {FAMILY} {TABLE} {p._map} {{ {p._element} }}" for p in add]
    return "\n".join(lines) + "\n" if lines else ""


# Declaring the table first makes the delete succeed when there is none.
TEARDOWN = f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"


def route_localnet(bridge: str, proc_sys: Path = Path("/proc/sys")) -> None:
    """Let packets from 127.0.0.0/8 be routed out of ``bridge`` (DNAT'ed from
    127.0.0.1): ip-sysctl.rst, route_localnet.  On the bridge only, never on
    ``all``, which would expose every service the host binds to 127.0.0.1."""
    (proc_sys / "net/ipv4/conf" / bridge / "route_localnet").write_text("1\n")


class Firewall:
    """The table from a desired state, and the ports' incremental updates.

    ``nft`` defaults to libnftables (one context for the process's life); the
    tests pass ``NftCommand()`` or a fake that records the scripts.
    """

    def __init__(self, nft: Nft | None = None, proc_sys: Path = Path("/proc/sys")) -> None:
        self._nft = nft if nft is not None else Libnftables()
        self._proc_sys = proc_sys

    def apply(self, state: FirewallState) -> None:
        """Replace the table with ``state`` (at service start, and when a
        network comes or goes), then set route_localnet on each bridge that
        exists (one made later gets it from the launcher: route_localnet())."""
        self._nft.run("apply the firewall", render(state))
        for n in state.networks:
            if (self._proc_sys / "net/ipv4/conf" / n.bridge).is_dir():
                route_localnet(n.bridge, self._proc_sys)

    def publish(self, ports: Iterable[PublishedPort]) -> None:
        script = render_ports(add=ports)
        if script:
            self._nft.run("publish ports", script)

    def unpublish(self, ports: Iterable[PublishedPort]) -> None:
        script = render_ports(remove=ports)
        if script:
            self._nft.run("unpublish ports", script)

    def teardown(self) -> None:
        """Remove the table, whether or not there is one."""
        self._nft.run("remove the firewall", TEARDOWN)
