"""IPv4 address management of bridge networks: pure, with no state of its own.

    Subnet           a network's subnet and gateway (by default its first host address)
    AddressPool      the addresses of one subnet in use, rebuilt from the records
                     (no state file): allocate (from the IP range, if any),
                     reserve (a requested address), release; ``reserved``
                     addresses (Docker's AuxiliaryAddresses) are never handed out
    check_ip_range   a network's IPRange and auxiliary addresses against its subnet
    mac_for          the container's MAC: 02:42 and the 4 bytes of its address (Docker's)
    Taken            a subnet something already holds, and what (a network, a host route)
    routes_taken     the host's routes as Taken (read with netlink RTM_GETROUTE)
    DEFAULT_POOLS    where default subnets come from, in Docker's order
    pick_subnet      the first default subnet that overlaps nothing taken
    check_subnet     a requested subnet against what is taken

Errors (runtime/errors.py's, so app/errors.py maps them unchanged):

    InvalidArgument          a subnet, gateway or address that cannot be (names the field)
    Conflict
    ├── SubnetOverlap        the subnet overlaps a network or a route; says which
    ├── AddressInUse         a requested address is someone else's, or the gateway
    └── PoolExhausted        no free address in the subnet, or no default subnet left
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from runtime.errors import Conflict, InvalidArgument
from runtime.network import netlink, rtnl


class SubnetOverlap(Conflict):
    def __init__(self, subnet: IPv4Network, what: str) -> None:
        super().__init__(f"subnet {subnet} overlaps {what}")
        self.subnet = subnet
        self.what = what


class AddressInUse(Conflict):
    def __init__(self, address: IPv4Address, by: str) -> None:
        super().__init__(f"address {address} is already in use ({by})")
        self.address = address


class PoolExhausted(Conflict):
    pass


@dataclass(frozen=True)
class Subnet:
    """A bridge network's addressing: the bridge holds ``gateway``/prefix."""

    network: IPv4Network
    gateway: IPv4Address

    @classmethod
    def of(cls, network: IPv4Network | str, gateway: IPv4Address | str | None = None) -> Subnet:
        """Validate a subnet (strict: no host bits) and its gateway (default:
        the first host address, as Docker's)."""
        try:
            net = IPv4Network(network)
        except ValueError as err:
            raise InvalidArgument("subnet", str(err)) from None
        # A /31 or /32 has no room for a gateway and a container (RFC 3021's
        # /31 has no broadcast, but also only 2 addresses).
        if net.prefixlen > 30:
            raise InvalidArgument("subnet", f"{net} is too small: /30 at most")
        if gateway is None:
            gw = net.network_address + 1
        else:
            try:
                gw = IPv4Address(gateway)
            except ValueError as err:
                raise InvalidArgument("gateway", str(err)) from None
            if not _is_host(net, gw):
                raise InvalidArgument("gateway", f"{gw} is not a host address of {net}")
        return cls(net, gw)

    @property
    def bridge_interface(self) -> IPv4Interface:
        """What the bridge's address is: ``172.17.0.1/16``."""
        return IPv4Interface((self.gateway, self.network.prefixlen))

    def interface(self, address: IPv4Address) -> IPv4Interface:
        """A container's address with the subnet's prefix: ``172.17.0.2/16``."""
        return IPv4Interface((address, self.network.prefixlen))


def _is_host(net: IPv4Network, address: IPv4Address) -> bool:
    # The network and broadcast addresses are no host's (RFC 919, RFC 922).
    return net.network_address < address < net.broadcast_address


class AddressPool:
    """The addresses of one subnet, as the records have them.

    Rebuilt from the records whenever needed (``AddressPool(subnet, [record
    addresses])``): the records are the truth, so a crash can neither leak an
    address nor hand one out twice.  ``allocate`` takes the lowest free
    address: a reused address comes back with the same MAC (``mac_for``), so
    the neighbours' ARP entries for it stay right.
    """

    def __init__(
        self,
        subnet: Subnet,
        in_use: Iterable[IPv4Address | str] = (),
        ip_range: IPv4Network | str | None = None,
        reserved: Iterable[IPv4Address | str] = (),
    ) -> None:
        self.subnet = subnet
        self.ip_range = IPv4Network(ip_range) if ip_range else subnet.network
        self._reserved = {IPv4Address(a) for a in reserved}
        self._in_use: set[IPv4Address] = set()
        #: No address below this one is free: ``allocate`` starts here, so a
        #: pool kept across launches (network/endpoints.py) does not walk
        #: every address in use each time.
        self._low = 0
        for address in in_use:
            self.reserve(address)

    @property
    def in_use(self) -> frozenset[IPv4Address]:
        return frozenset(self._in_use)

    def allocate(self) -> IPv4Address:
        """The lowest host address of the IP range that is neither the
        gateway, nor reserved, nor in use."""
        net, pool = self.subnet.network, self.ip_range
        first = max(int(net.network_address) + 1, int(pool.network_address))
        last = min(int(net.broadcast_address) - 1, int(pool.broadcast_address))
        in_use, reserved, gateway = self._in_use, self._reserved, self.subnet.gateway
        for value in range(max(first, self._low), last + 1):
            address = IPv4Address(value)
            if address not in in_use and address not in reserved and address != gateway:
                in_use.add(address)
                self._low = value + 1
                return address
        raise PoolExhausted(f"no free address left in {pool}")

    def reserve(self, address: IPv4Address | str, field: str = "address") -> IPv4Address:
        """Take a given address (a record's, or one the user asked for, anywhere
        in the subnet as Docker's: the IP range only bounds ``allocate``);
        ``field`` names it in errors."""
        try:
            wanted = IPv4Address(address)
        except ValueError as err:
            raise InvalidArgument(field, str(err)) from None
        if not _is_host(self.subnet.network, wanted):
            raise InvalidArgument(field, f"{wanted} is not a host address of {self.subnet.network}")
        if wanted == self.subnet.gateway:
            raise AddressInUse(wanted, "the gateway")
        if wanted in self._reserved:
            raise AddressInUse(wanted, "an auxiliary address of the network")
        if wanted in self._in_use:
            raise AddressInUse(wanted, "another container")
        self._in_use.add(wanted)
        return wanted

    def release(self, address: IPv4Address | str) -> None:
        """Give an address back; releasing a free one is no error (idempotent)."""
        released = IPv4Address(address)
        self._in_use.discard(released)
        self._low = min(self._low, int(released))


def check_ip_range(
    subnet: Subnet, ip_range: str | None, aux: Mapping[str, str]
) -> IPv4Network | None:
    """The IP range (``IPRange``: a subnet inside ``subnet``) and the
    auxiliary addresses (host addresses of ``subnet``), checked."""
    net = subnet.network
    chosen = None
    if ip_range:
        try:
            chosen = IPv4Network(ip_range)
        except ValueError as err:
            raise InvalidArgument("ip_range", str(err)) from None
        if not chosen.subnet_of(net):
            raise InvalidArgument("ip_range", f"{chosen} is not inside the subnet {net}")
    for name, address in aux.items():
        try:
            value = IPv4Address(address)
        except ValueError as err:
            raise InvalidArgument(f"aux_addresses.{name}", str(err)) from None
        if not _is_host(net, value):
            raise InvalidArgument(
                f"aux_addresses.{name}", f"{value} is not a host address of {net}"
            )
    return chosen


def mac_for(address: IPv4Address | str) -> str:
    """``02:42:`` and the address's 4 bytes, as Docker derives them (libnetwork's
    genMAC): locally administered, unicast, and unique within a subnet."""
    return rtnl.format_mac(b"\x02\x42" + IPv4Address(address).packed)


@dataclass(frozen=True)
class Taken:
    """A subnet already in use, and by what: ``"network 'backend'"``,
    ``"the host's route 10.0.0.0/8 dev eth0"``."""

    network: IPv4Network
    what: str


def routes_taken(
    routes: Iterable[rtnl.Route], names: Mapping[int, str] | None = None
) -> list[Taken]:
    """The host's routes a new subnet must not overlap: all but the default
    route (0.0.0.0/0 overlaps everything; Docker skips it too)."""
    names = names or {}
    taken = []
    for route in routes:
        if route.dst.prefixlen == 0:
            continue
        words = [f"the host's route {route.dst}"]
        if route.gateway is not None:
            words.append(f"via {route.gateway}")
        if route.oif is not None:
            words.append(f"dev {names.get(route.oif, f'#{route.oif}')}")
        taken.append(Taken(route.dst, " ".join(words)))
    return taken


def host_routes_taken(nl: netlink.Netlink) -> list[Taken]:
    """``routes_taken`` of the main table of the socket's namespace."""
    names = {link.index: link.name for link in netlink.links(nl)}
    return routes_taken(netlink.routes(nl), names)


def _default_pools() -> Iterator[IPv4Network]:
    # libnetwork's ipamutils.localScopeDefaultNetworks: 172.17.0.0/16 (the
    # built-in `bridge`) through 172.31.0.0/16, then 192.168.0.0/16 in /20s.
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


#: The default subnets in the order they are handed out (15 /16s, 16 /20s).
DEFAULT_POOLS: tuple[IPv4Network, ...] = tuple(_default_pools())


def check_subnet(subnet: IPv4Network, taken: Iterable[Taken]) -> None:
    """SubnetOverlap naming the first thing ``subnet`` overlaps, if any."""
    for item in taken:
        if subnet.overlaps(item.network):
            raise SubnetOverlap(subnet, item.what)


def pick_subnet(
    taken: Iterable[Taken], pools: Iterable[IPv4Network] = DEFAULT_POOLS
) -> IPv4Network:
    """The first pool that overlaps neither an existing network nor a host route."""
    taken = list(taken)
    for candidate in pools:
        if not any(candidate.overlaps(item.network) for item in taken):
            return candidate
    raise PoolExhausted("every default subnet overlaps a network or a route; give a subnet")
