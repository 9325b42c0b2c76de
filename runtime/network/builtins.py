"""``Builtins``: the built-in networks as records, and what subnets are taken.

    virtual        ``none`` and ``host``: never recorded, a fixed id
    bridge         the built-in ``bridge``, recorded the first time it is
                   needed, its subnet picked clear of the networks and the
                   host's routes
    listed         ``bridge`` as a listing or a lookup shows it: without a
                   subnet, unrecorded, when every default subnet is taken
    launched       ``bridge`` for a container on it: recorded, or a 409
                   saying what to do instead
    taken          the subnets the networks' records and the host's routes hold

``Networks`` (runtime/networks.py) lists and looks networks up through it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Network

from runtime.network import netlink
from runtime.network.attachment import BRIDGE
from runtime.network.ipam import PoolExhausted, Taken, pick_subnet
from runtime.network.ipam import host_routes_taken as _host_routes_taken
from runtime.records import NetworkRecord, RecordStore
from runtime.timeutil import now_rfc3339

#: The built-in ``bridge`` network's Linux bridge; user networks' are
#: ``mdk-`` + 11 hex digits of their id (IFNAMSIZ holds 15 characters).
DEFAULT_BRIDGE = "mydocker0"
BRIDGE_PREFIX = "mdk-"


def host_routes_taken() -> list[Taken]:
    with netlink.Netlink() as nl:
        return _host_routes_taken(nl)


def fixed_id(name: str) -> str:
    return hashlib.sha256(f"mydocker network {name}".encode()).hexdigest()


class Builtins:
    def __init__(
        self,
        records: RecordStore,
        routes: Callable[[], list[Taken]],
        lock: threading.RLock,
    ) -> None:
        """``routes``: the host's, through netlink (tests pass a fake);
        ``lock``: the networks' (``bridge`` is recorded under it)."""
        self.records = records
        self._routes = routes
        self._lock = lock
        self._started_at = now_rfc3339()

    def virtual(self, name: str) -> NetworkRecord:
        return NetworkRecord(name, fixed_id(name), "", "", "", False, self._started_at)

    def bridge(self) -> NetworkRecord:
        """The built-in ``bridge``: recorded the first time it is needed."""
        for record in self.records.networks():
            if record.name == BRIDGE:
                return record
        subnet = pick_subnet(self.taken(exclude=BRIDGE))
        record = NetworkRecord(
            BRIDGE,
            fixed_id(BRIDGE),
            str(subnet),
            str(subnet.network_address + 1),
            DEFAULT_BRIDGE,
            False,
            now_rfc3339(),
        )
        self.records.insert_network(record)
        return record

    def listed(self) -> NetworkRecord:
        """The built-in ``bridge`` as listed: recorded if a subnet is free;
        else shown without one and not recorded (a lookup, a listing or
        another network's create must not fail for it; a container on it
        gets the 409 from ``launched``)."""
        with self._lock:
            try:
                return self.bridge()
            except PoolExhausted:
                return replace(self.virtual(BRIDGE), bridge=DEFAULT_BRIDGE)

    def launched(self) -> NetworkRecord:
        """The built-in ``bridge`` for a container on it: recorded now if not
        yet, or a 409 saying what to do instead."""
        try:
            return self.bridge()
        except PoolExhausted as err:
            raise PoolExhausted(
                f"network {BRIDGE!r} has no subnet: every default subnet overlaps "
                "a network or a route; use a user network with a subnet of its own"
            ) from err

    def taken(self, exclude: str = "") -> list[Taken]:
        networks = [
            Taken(IPv4Network(r.subnet), f"network {r.name!r}")
            for r in self.records.networks()
            if r.name != exclude
        ]
        return networks + self._routes()
