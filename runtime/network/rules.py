"""What a network and an endpoint may be asked, checked before anything is
allocated (runtime/networks.py and runtime/connections.py call them).

    check_network_name       Docker's rule: any name that is not blank
    check_aliases            each alias a DNS name (``network_aliases.N``)
    check_options_unbridged  a static address, MAC, links, link-local
                             addresses need a bridge network
    check_static             a static address in the network's subnet, and
                             not on the built-in ``bridge``

Each raises ``InvalidArgument`` naming the field (a 400/422).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from runtime.errors import InvalidArgument
from runtime.network.attachment import BRIDGE, EndpointOptions
from runtime.network.dns import check_name
from runtime.records import NetworkRecord

#: Docker takes any non-blank name ("test 01" included); a ``/`` could not
#: be named in a URL path, and control characters not be printed.
NAME_MAX = 128


def check_network_name(name: str) -> None:
    """Docker's rule: any name that is not blank; ours adds what a URL path
    and a terminal need (no ``/``, no control characters, 128 at most)."""
    if not name.strip():
        raise InvalidArgument("name", "a network name must not be blank")
    if len(name) > NAME_MAX or "/" in name or not name.isprintable():
        raise InvalidArgument(
            "name", f"{name!r} is not a network name (printable, no '/', {NAME_MAX} at most)"
        )


def check_aliases(aliases: tuple[str, ...]) -> None:
    for index, alias in enumerate(aliases):
        try:
            check_name(alias)
        except (ValueError, InvalidArgument) as err:
            raise InvalidArgument(f"network_aliases.{index}", str(err)) from err


def check_options_unbridged(network: str, options: EndpointOptions) -> None:
    for name in ("ipv4_address", "mac_address", "links", "link_local_ips"):
        if getattr(options, name):
            raise InvalidArgument(f"endpoint.{name}", f"needs a bridge network, not {network!r}")


def check_static(record: NetworkRecord, options: EndpointOptions) -> None:
    """A static address must be in the subnet; Docker also refuses one on a
    network whose subnet the user did not choose (the built-in ``bridge``)."""
    wanted = options.ipv4_address
    if not wanted:
        return
    if record.name == BRIDGE:
        raise InvalidArgument(
            "endpoint.ipv4_address",
            "a static address needs a user network with a subnet, not 'bridge'",
        )
    if IPv4Address(wanted) not in IPv4Network(record.subnet):
        raise InvalidArgument(
            "endpoint.ipv4_address",
            f"{wanted} is not in network {record.name!r}'s subnet {record.subnet}",
        )
