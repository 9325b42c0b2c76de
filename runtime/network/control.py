"""The API process's side of the control plane: firewall, DNS, ip_forward.

    ControlPlane
    ├── rebuild      the whole nft table from the records' networks and the
    │                live containers' ports (start-up, a network made or gone)
    ├── publish / unpublish   one container's ports: one element update each
    ├── listen / unlisten     the embedded DNS on a user network's gateway
    ├── add_names / remove_names   a container's names on its network
    └── close        the DNS server's thread (the table stays: containers run on)

Nothing here touches the host until the first bridge network is in use
(``active``): a service whose containers all run with ``none`` never loads
nftables, never writes ``ip_forward``, never opens port 53.  Once active,
``ip_forward`` is turned on (Docker does the same) since a bridge network's
egress and published ports are forwarded packets (ip-sysctl.rst).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from runtime.network.dns import DnsServer, NameTable
from runtime.network.firewall import Firewall, FirewallState, Network, PublishedPort

log = logging.getLogger("mydocker.network")

PROC_SYS = Path("/proc/sys")


class ControlPlane:
    def __init__(
        self,
        firewall: Firewall | None = None,
        dns: DnsServer | None = None,
        proc_sys: Path = PROC_SYS,
    ) -> None:
        """``firewall`` and ``dns`` are made on first use unless given (tests)."""
        self._ip_forward = proc_sys / "net/ipv4/ip_forward"
        self._firewall = firewall
        self._dns = dns
        self.names = dns.table if dns is not None else NameTable()
        self._lock = threading.Lock()
        self.active = False

    def _activate(self) -> None:
        if self.active:
            return
        try:
            if self._ip_forward.read_text().strip() != "1":
                self._ip_forward.write_text("1\n")
                log.info("turned net.ipv4.ip_forward on (bridge networks forward packets)")
        except OSError as err:
            log.warning("cannot turn net.ipv4.ip_forward on: %s", err)
        if self._firewall is None:
            self._firewall = Firewall()
        if self._dns is None:
            self._dns = DnsServer(self.names)
        self.active = True

    def rebuild(self, networks: Iterable[Network], ports: Iterable[PublishedPort]) -> None:
        with self._lock:
            self._activate()
            assert self._firewall is not None
            self._firewall.apply(FirewallState(tuple(networks), tuple(ports)))

    def publish(self, ports: list[PublishedPort]) -> None:
        if ports:
            with self._lock:
                assert self._firewall is not None
                self._firewall.publish(ports)

    def unpublish(self, ports: list[PublishedPort]) -> None:
        if ports and self.active:
            with self._lock:
                assert self._firewall is not None
                self._firewall.unpublish(ports)

    def listen(self, network: str, gateway: IPv4Address) -> None:
        """The embedded DNS on ``gateway``:53; a clash is logged, not fatal:
        the network works, its names do not resolve."""
        with self._lock:
            self._activate()
            assert self._dns is not None
            try:
                self._dns.listen(network, gateway)
            except OSError as err:
                log.error("network %s: no name resolution: %s", network, err)

    def unlisten(self, network: str) -> None:
        if self._dns is not None:
            self._dns.unlisten(network)
        self.names.drop_network(network)

    def add_names(self, network: str, address: IPv4Address, names: Iterable[str]) -> None:
        self.names.add(network, address, names)

    def remove_names(self, network: str, address: IPv4Address) -> None:
        self.names.remove(network, address)

    def close(self) -> None:
        if self._dns is not None:
            self._dns.close()
            self._dns = None
