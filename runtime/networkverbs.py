"""``NetworkVerbs``: the ``Runtime`` facade's network methods (a base class,
as ``files.FileVerbs``): user networks (runtime/networks.py) and a
container's joining or leaving one after its create (runtime/connections.py)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping

from runtime.connections import Connections
from runtime.network.attachment import EndpointOptions
from runtime.networks import Networks
from runtime.records import ContainerRecord, NetworkRecord


class NetworkVerbs:
    networks: Networks
    connections: Connections

    def create_network(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ip_range: str | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> NetworkRecord:
        return self.networks.create(
            name, subnet, gateway, internal, labels, ip_range, aux_addresses
        )

    def list_networks(self) -> builtins.list[NetworkRecord]:
        return self.networks.every()

    def get_network(self, ref: str) -> NetworkRecord:
        return self.networks.get(ref)

    def network_containers(self, name: str) -> builtins.list[ContainerRecord]:
        """The live containers attached to network ``name``."""
        return self.networks.containers(name)

    def delete_network(self, ref: str) -> None:
        """409 while a container is attached; 403 for a built-in."""
        self.networks.delete(ref)

    def connect_network(
        self,
        ref: str,
        network: str,
        aliases: tuple[str, ...] = (),
        options: EndpointOptions | None = None,
    ) -> ContainerRecord:
        """One more network for a container (runtime/connections.py)."""
        return self.connections.connect(ref, network, aliases, options)

    def disconnect_network(self, ref: str, network: str, force: bool = False) -> ContainerRecord:
        return self.connections.disconnect(ref, network, force)

    def prune_networks(self) -> builtins.list[str]:
        return self.networks.prune()
