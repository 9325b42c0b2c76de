"""The host ports a launch will publish, picked in the API before anything
is recorded (runtime/networks.py: ``Networks.attach``).

    pick    each asked port as it will be held: the kernel's pick for a
            port 0 (bound and closed to learn it, tried again while a live
            container was promised it), a clash a ``PortClash`` (409), a
            host address the host does not have a 422 naming the field

The launcher then holds them (runtime/network/ports.py); until it has, the
live records' ports are the promises a pick must not break.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Address

from runtime.errors import InvalidArgument
from runtime.network.attachment import PortMapping
from runtime.network.firewall import Protocol
from runtime.network.ports import Binding, PortClash


def pick(asked: Sequence[PortMapping], taken: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
    """``asked`` with their host ports, none of them in ``taken`` (the live
    records') or in each other."""
    chosen: list[PortMapping] = []
    for index, port in enumerate(asked):
        for _ in range(PORT_TRIES):
            mapped = _probe(port, index)
            clash = any(_same_port(mapped, other) for other in [*taken, *chosen])
            if not clash or port.host_port:
                break
        if clash:
            binding = Binding(Protocol(port.protocol), IPv4Address(port.host_ip), mapped.host_port)
            raise PortClash(binding)
        chosen.append(mapped)
    return tuple(chosen)


#: Ephemeral ports tried for a port 0 before giving up (the kernel picks
#: them at random from ip_local_port_range: a promised one comes back rarely).
PORT_TRIES = 8


def _probe(port: PortMapping, index: int) -> PortMapping:
    """``port`` with the host port a bind gets now (the kernel's pick for 0)."""
    kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((port.host_ip, port.host_port))
        except OSError as err:
            binding = Binding(Protocol(port.protocol), IPv4Address(port.host_ip), port.host_port)
            if err.errno == errno.EADDRINUSE:
                raise PortClash(binding) from None
            if err.errno == errno.EADDRNOTAVAIL:
                why = f"{port.host_ip} is not an address of the host"
                raise InvalidArgument(f"ports.{index}.host_ip", why) from None
            raise
        return replace(port, host_port=probe.getsockname()[1])


def _same_port(a: PortMapping, b: PortMapping) -> bool:
    wildcard = "0.0.0.0" in (a.host_ip, b.host_ip)
    return (a.protocol, a.host_port) == (b.protocol, b.host_port) and (
        wildcard or a.host_ip == b.host_ip
    )
