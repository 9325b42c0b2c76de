"""The network models: a container's ``network``, ``ports`` and their public
form (``PortCreate``, ``ContainerNetwork``), and ``/networks``'
``NetworkCreate`` / ``NetworkPublic`` (docs/networking.md)."""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from runtime.network.attachment import NONE, Attachment, EndpointOptions, PortMapping
from runtime.records import ContainerRecord, NetworkRecord

#: A network's name (``none``, ``host``, ``bridge`` or a user network's):
#: Docker's rule, any name that is not blank ("test 01" included), and what a
#: URL path and a terminal need: no ``/``, no control characters.
NETWORK_NAME_PATTERN = r"^[^/\x00-\x1f\x7f]*[^/\s][^/\x00-\x1f\x7f]*$"
NetworkName = Annotated[str, Field(pattern=NETWORK_NAME_PATTERN, max_length=128)]
MAC_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
LINK_PATTERN = r"^[^:]+(:[^:]+)?$"
#: An extra DNS name on a user network (RFC 1123 labels, ``_`` allowed).
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
ALIAS_PATTERN = rf"^{_LABEL}(\.{_LABEL})*$"
Alias = Annotated[str, Field(pattern=ALIAS_PATTERN, max_length=253)]


def _ipv4(value: str) -> str:
    IPv4Address(value)  # ValueError: pydantic's 422 naming the field
    return value


class PortCreate(BaseModel):
    """A published port (`docker run -p [IP:][HOST:]CONTAINER[/udp]`)."""

    model_config = ConfigDict(extra="forbid")

    container_port: Annotated[int, Field(ge=1, le=65535)]
    host_port: Annotated[
        int | None,
        Field(ge=0, le=65535, description="0 or absent: a free port the service picks."),
    ] = None
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: Annotated[
        str,
        Field(
            description="Host address to publish on: `127.0.0.1` by default (safer than "
            "Docker's all addresses); `0.0.0.0` for every address of the host."
        ),
    ] = "127.0.0.1"

    @field_validator("host_ip")
    @classmethod
    def _host_ip(cls, value: str) -> str:
        return _ipv4(value)

    def to_runtime(self) -> PortMapping:
        return PortMapping(self.container_port, self.host_port or 0, self.protocol, self.host_ip)


class PortPublic(BaseModel):
    container_port: int
    host_ip: str
    host_port: int
    protocol: str


class EndpointCreate(BaseModel):
    """What a container asks of its place on a network besides its aliases."""

    model_config = ConfigDict(extra="forbid")

    ipv4_address: Annotated[
        str | None,
        Field(description="A static address in the network's subnet (not on `bridge`)."),
    ] = None
    mac_address: Annotated[
        str | None,
        Field(pattern=MAC_PATTERN, description="Default: 02:42 and the address's 4 bytes."),
    ] = None
    driver_opts: Annotated[
        dict[str, str], Field(description="Kept and shown; the bridge driver reads none.")
    ] = {}
    link_local_ips: Annotated[
        list[str],
        Field(max_length=16, description="More IPv4 addresses on its interface, each a /16."),
    ] = []
    links: Annotated[
        list[Annotated[str, Field(pattern=LINK_PATTERN, max_length=256)]],
        Field(
            max_length=64,
            description="`container[:alias]`: on a user network an alias resolved by its "
            "DNS, on `bridge` an /etc/hosts line (Docker's links).",
        ),
    ] = []

    @field_validator("ipv4_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _ipv4(value)

    @field_validator("link_local_ips")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_ipv4(v) for v in value]

    @field_validator("mac_address")
    @classmethod
    def _unicast(cls, value: str | None) -> str | None:
        if value is not None and int(value[:2], 16) & 1:
            raise ValueError(f"{value} is a multicast address")
        return value

    def to_runtime(self) -> EndpointOptions:
        return EndpointOptions(
            self.ipv4_address or "",
            self.mac_address or "",
            dict(self.driver_opts),
            tuple(self.links),
            tuple(self.link_local_ips),
        )


class NetworkConnect(EndpointCreate):
    """``POST /containers/{id}/networks``: one more network for a container."""

    network: NetworkName
    aliases: Annotated[
        list[Alias], Field(max_length=64, description="Extra names on a user network.")
    ] = []


class ContainerNetwork(BaseModel):
    """A container's network as assigned (empty strings with `none` and `host`)."""

    mode: Annotated[str, Field(description="`none`, `host` or `bridge` (any bridge network).")]
    network: Annotated[str, Field(description="The network's name.")]
    ip_address: str
    prefix_length: int
    gateway: str
    mac_address: str
    ports: list[PortPublic]
    aliases: list[str]
    interface: Annotated[str, Field(description="Its end inside: `eth0`, `eth1`…")] = ""
    links: list[str] = []

    @classmethod
    def from_attachment(cls, net: Attachment | None) -> ContainerNetwork:
        net = net or Attachment()
        return cls(
            mode=net.mode,
            network=net.network if net.mode != NONE else NONE,
            ip_address=net.ip,
            prefix_length=net.prefix,
            gateway=net.gateway,
            mac_address=net.mac,
            ports=[PortPublic(**p.__dict__) for p in net.ports],
            aliases=list(net.aliases),
            interface=net.ifname if net.connected else "",
            links=list(net.options.links),
        )


class NetworkCreate(BaseModel):
    """A user bridge network."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "backend"}]})

    name: NetworkName
    subnet: Annotated[
        str | None,
        Field(description="IPv4 CIDR, e.g. `10.89.0.0/24`; default: a free one of Docker's pools."),
    ] = None
    gateway: Annotated[
        str | None, Field(description="The bridge's address; default the subnet's first.")
    ] = None
    internal: Annotated[
        StrictBool, Field(description="No way out: no masquerade, nothing forwarded in or out.")
    ] = False
    ip_range: Annotated[
        str | None,
        Field(description="Addresses are handed out from this part of the subnet only."),
    ] = None
    aux_addresses: Annotated[
        dict[str, str],
        Field(description="Name -> address of the subnet that is never handed out."),
    ] = {}

    @field_validator("ip_range")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            IPv4Network(value)
        return value

    @field_validator("aux_addresses")
    @classmethod
    def _aux(cls, value: dict[str, str]) -> dict[str, str]:
        for address in value.values():
            _ipv4(address)
        return value

    @field_validator("subnet")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is not None:
            IPv4Network(value)  # strict: host bits set is an error
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        return None if value is None else _ipv4(value)


class NetworkContainer(BaseModel):
    id: str
    name: str
    ip_address: str
    mac_address: str


class NetworkPublic(BaseModel):
    name: str
    id: str
    driver: Annotated[str, Field(description="`bridge`, `host` or `null` (none).")]
    subnet: str | None
    gateway: str | None
    ip_range: str | None = None
    aux_addresses: dict[str, str] = {}
    internal: bool
    builtin: bool
    created_at: datetime
    containers: Annotated[
        list[NetworkContainer] | None,
        Field(description="The live containers on it (in `GET /networks/{name}` only)."),
    ] = None

    @classmethod
    def from_record(
        cls, record: NetworkRecord, containers: list[ContainerRecord] | None = None
    ) -> NetworkPublic:
        builtin = record.name in ("none", "host", "bridge")
        driver = "bridge" if record.bridge else ("host" if record.name == "host" else "null")
        return cls(
            name=record.name,
            id=record.id,
            driver=driver,
            subnet=record.subnet or None,
            gateway=record.gateway or None,
            ip_range=record.ip_range or None,
            aux_addresses=dict(record.aux_addresses),
            internal=record.internal,
            builtin=builtin,
            created_at=record.created_at,  # type: ignore[arg-type]
            containers=None
            if containers is None
            else [
                NetworkContainer(id=c.id, name=c.name, ip_address=e.ip, mac_address=e.mac)
                for c in containers
                for e in c.spec.attachments()
                if e.network == record.name
            ],
        )
