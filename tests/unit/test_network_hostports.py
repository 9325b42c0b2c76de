"""runtime/network/hostports.py: host ports picked against the live records'
promises and the host's own sockets."""

from __future__ import annotations

import socket

import pytest

from runtime.errors import InvalidArgument
from runtime.network import hostports
from runtime.network.attachment import PortMapping
from runtime.network.ports import PortClash


def test_a_port_0_gets_one_no_promise_or_other_pick_holds() -> None:
    first, second = hostports.pick((PortMapping(80), PortMapping(81)), ())
    assert first.host_port > 0 and second.host_port > 0
    assert first.host_port != second.host_port
    again = hostports.pick((PortMapping(80),), (first, second))
    assert again[0].host_port not in (first.host_port, second.host_port)


def test_a_promised_or_bound_port_is_a_clash_and_a_foreign_address_a_422() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        used = taken.getsockname()[1]
        with pytest.raises(PortClash, match=f"port {used}/tcp"):
            hostports.pick((PortMapping(80, used),), ())
    promised = PortMapping(1, used, "tcp", "0.0.0.0")  # every address: clashes with 127.0.0.1
    with pytest.raises(PortClash):
        hostports.pick((PortMapping(80, used),), (promised,))
    assert hostports.pick((PortMapping(80, used, "udp"),), (promised,))[0].host_port == used
    with pytest.raises(InvalidArgument) as bad:
        hostports.pick((PortMapping(80), PortMapping(81, 0, "tcp", "192.0.2.1")), ())
    assert bad.value.field == "ports.1.host_ip"
