"""Docker's networking: the create body's network fields, inspect's
``NetworkSettings``, and ``/networks``.

    create_fields      HostConfig.NetworkMode, PortBindings, PublishAllPorts,
                       ExposedPorts, NetworkingConfig.EndpointsConfig (aliases)
                       -> the native ``network``, ``ports``, ``network_aliases``
    settings, ports    NetworkSettings of inspect, ``Ports`` of ps
    endpoint           one EndpointsConfig entry (IPAMConfig, MacAddress,
                       DriverOpts, Links) -> the native ``endpoint``
    extra_endpoints    the networks beyond the first, connected after create
    router             /networks: list, inspect, create, remove, prune,
                       connect, disconnect

Differences, documented in docs/networking.md: a port binding without
``HostIp`` is published on 127.0.0.1, not on every address, as the native
API does; IPv4 only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import BaseModel, ConfigDict, ValidationError

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.params import parse_filters
from app.schemas.networks import EndpointCreate
from runtime import ContainerRecord
from runtime.api import RuntimeApi
from runtime.network.attachment import (
    BRIDGE,
    BUILTIN_NETWORKS,
    HOST,
    NONE,
    Attachment,
    EndpointOptions,
)
from runtime.records import NetworkRecord
from runtime.spec import CreateRequest

router = APIRouter(tags=["docker networks"])

#: What Docker calls the default network: the service's choice (--docker-network).
DEFAULT_NAMES = ("", "default")
#: What an endpoint of ``NetworkingConfig`` (and a connect's
#: ``EndpointConfig``) may carry; the CLI fills in the ids on its own.
ENDPOINT_KEYS = (
    "Aliases",
    "DNSNames",
    "NetworkID",
    "EndpointID",
    "IPAMConfig",
    "MacAddress",
    "DriverOpts",
    "Links",
)
IPAM_KEYS = ("IPv4Address", "IPv6Address", "LinkLocalIPs")


def _port_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    try:
        port = int(number)
    except ValueError:
        raise DockerError(400, f"invalid port {key!r}") from None
    return port, proto or "tcp"


def _bindings(host: Any, exposed: Iterable[str]) -> list[dict[str, Any]]:
    """``PortBindings`` (and, with ``PublishAllPorts``, every exposed port:
    the create's and the image's) as native ``ports``: an empty ``HostIp``
    is 127.0.0.1, an empty ``HostPort`` a port the service picks."""
    ports: list[dict[str, Any]] = []
    bindings: dict[str, Any] = host.PortBindings or {}
    for key, entries in bindings.items():
        container_port, proto = _port_key(key)
        for entry in entries or [{}]:
            host_port = (entry or {}).get("HostPort") or "0"
            try:
                number = int(host_port)
            except ValueError:
                raise DockerError(400, f"invalid host port {host_port!r} for {key}") from None
            ports.append(
                {
                    "container_port": container_port,
                    "host_port": number,
                    "protocol": proto,
                    "host_ip": (entry or {}).get("HostIp") or "127.0.0.1",
                }
            )
    if host.PublishAllPorts:
        bound = {_port_key(key) for key in bindings}
        for key in dict.fromkeys(exposed):
            if (port := _port_key(key)) not in bound:
                bound.add(port)
                ports.append({"container_port": port[0], "protocol": port[1]})
    return ports


def _link(value: str) -> str:
    """``name:alias`` from Docker's spellings (``/name:/me/alias`` as inspect
    shows a legacy link, ``name`` alone)."""
    name, _, alias = value.partition(":")
    name, alias = name.strip("/"), alias.rpartition("/")[2]
    return f"{name}:{alias}" if alias and alias != name else name


def endpoint(settings: Any, where: str, mac: str = "", links: Iterable[str] = ()) -> dict[str, Any]:
    """One endpoint's settings as the native ``endpoint`` body; ``mac`` and
    ``links`` come from the container's config for its first network."""
    settings = settings or {}
    extra = {k for k, v in settings.items() if k not in ENDPOINT_KEYS and v}
    if extra:
        raise DockerError(
            400, f"unsupported option(s) of network {where}: {', '.join(sorted(extra))}"
        )
    ipam = settings.get("IPAMConfig") or {}
    extra = {k for k, v in ipam.items() if k not in IPAM_KEYS and v}
    if ipam.get("IPv6Address") or any(":" in a for a in ipam.get("LinkLocalIPs") or []):
        extra.add("IPv6 addresses (mydocker's networks are IPv4 only)")
    if extra:
        raise DockerError(
            400, f"unsupported IPAMConfig of network {where}: {', '.join(sorted(extra))}"
        )
    return {
        "ipv4_address": ipam.get("IPv4Address") or None,
        "link_local_ips": ipam.get("LinkLocalIPs") or [],
        "mac_address": settings.get("MacAddress") or mac or None,
        "driver_opts": settings.get("DriverOpts") or {},
        "links": [_link(v) for v in [*links, *(settings.get("Links") or [])]],
    }


def create_fields(config: Any, default: str, image_ports: Iterable[str] = ()) -> dict[str, Any]:
    """The native create body's network fields from Docker's; ``image_ports``
    are the image's ExposedPorts.  The first network is ``NetworkMode``'s
    (or the only endpoint's); ``extra_endpoints`` gives the others."""
    host = config.host()
    mode = host.NetworkMode or ""
    endpoints: dict[str, Any] = (config.NetworkingConfig or {}).get("EndpointsConfig") or {}
    if mode.startswith("container:"):
        raise DockerError(400, "unsupported NetworkMode container:<id>: use a network")
    if mode in DEFAULT_NAMES:
        named = [n for n in endpoints if n not in DEFAULT_NAMES]
        mode = named[0] if named else default
    elif mode == "private":
        mode = NONE
    first: dict[str, Any] = {}
    for name, settings in endpoints.items():
        if name == mode or (name in DEFAULT_NAMES and mode == default):
            first = settings or {}
    links = host.Links or []
    fields = endpoint(first, mode, getattr(config, "MacAddress", "") or "", links)
    aliases = list(dict.fromkeys(first.get("Aliases") or []))
    if mode in (NONE, HOST, BRIDGE):
        aliases = []  # Docker keeps aliases to user networks; the CLI sends none for these
    return {
        "network": mode,
        "ports": _bindings(host, [*(config.ExposedPorts or {}), *image_ports]),
        "network_aliases": aliases,
        "endpoint": None if mode in (NONE, HOST) and not any(fields.values()) else fields,
    }


def extra_endpoints(config: Any, first: str) -> list[tuple[str, list[str], dict[str, Any]]]:
    """The networks of ``EndpointsConfig`` beyond the first (API 1.44 takes
    several at create): each (name, aliases, native ``endpoint``), connected
    after the create and before the start."""
    endpoints: dict[str, Any] = (config.NetworkingConfig or {}).get("EndpointsConfig") or {}
    others = []
    for name, settings in endpoints.items():
        if name in (first, *DEFAULT_NAMES):
            continue
        others.append((name, list((settings or {}).get("Aliases") or []), endpoint(settings, name)))
    return others


# -- inspect ----------------------------------------------------------------------
def ports(record: ContainerRecord) -> dict[str, Any]:
    """``NetworkSettings.Ports``: what ``docker port`` prints."""
    net = record.spec.network
    found: dict[str, list[dict[str, str]]] = {}
    if net is None or record.status.value == "exited":
        return found
    for p in net.ports:
        key = f"{p.container_port}/{p.protocol}"
        found.setdefault(key, []).append({"HostIp": p.host_ip, "HostPort": str(p.host_port)})
    return found


def summary_ports(record: ContainerRecord) -> list[dict[str, Any]]:
    """``Ports`` of ``GET /containers/json`` (``docker ps``)."""
    net = record.spec.network
    if net is None or record.status.value == "exited":
        return []
    return [
        {
            "IP": p.host_ip,
            "PrivatePort": p.container_port,
            "PublicPort": p.host_port,
            "Type": p.protocol,
        }
        for p in net.ports
    ]


def network_mode(record: ContainerRecord) -> str:
    net = record.spec.network
    return net.network if net is not None else NONE


def _endpoint(record: ContainerRecord, net: Attachment, network_id: str = "") -> dict[str, Any]:
    options = net.options
    asked = options.ipv4_address or options.link_local_ips
    user = net.network not in BUILTIN_NETWORKS
    # API 1.44 listed the short id among a user network's aliases (1.45
    # moved it to DNSNames only); both are shown, and the DNS answers both.
    aliases = [*net.aliases, record.id[:12]] if user else list(net.aliases)
    return {
        "IPAMConfig": {
            "IPv4Address": options.ipv4_address,
            "LinkLocalIPs": list(options.link_local_ips),
        }
        if asked
        else None,
        "Links": list(options.links) or None,
        "Aliases": aliases or None,
        "MacAddress": net.mac,
        "DriverOpts": dict(options.driver_opts) or None,
        "NetworkID": network_id,
        "EndpointID": record.id if net.bridged else "",
        "Gateway": net.gateway,
        "IPAddress": net.ip,
        "IPPrefixLen": net.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": [record.name, record.id[:12], *net.aliases] if user else None,
    }


def settings(
    record: ContainerRecord, network_ids: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``NetworkSettings`` of inspect: every network it is connected to; the
    top-level fields are the first network's, as Docker's bridge's."""
    ids = network_ids or {}
    net = record.spec.network
    live = record.status.value != "exited"
    networks: dict[str, Any] = {}
    if live and net is not None and not net.bridged:
        networks[net.network] = _endpoint(record, net)
    for attached in record.spec.attachments() if live else ():
        networks[attached.network] = _endpoint(record, attached, ids.get(attached.network, ""))
    bridged = net is not None and net.connected and live
    return {
        "Bridge": net.bridge if bridged and net else "",
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": ports(record),
        "Networks": networks,
        "IPAddress": net.ip if bridged and net else "",
        "IPPrefixLen": net.prefix if bridged and net else 0,
        "Gateway": net.gateway if bridged and net else "",
        "MacAddress": net.mac if bridged and net else "",
    }


# -- /networks ----------------------------------------------------------------------
def _ipam_config(record: NetworkRecord) -> list[dict[str, Any]]:
    if not record.subnet:
        return []
    config: dict[str, Any] = {"Subnet": record.subnet, "Gateway": record.gateway}
    if record.ip_range:
        config["IPRange"] = record.ip_range
    if record.aux_addresses:
        config["AuxiliaryAddresses"] = dict(record.aux_addresses)
    return [config]


def _attached(record: NetworkRecord, c: ContainerRecord) -> dict[str, Any]:
    found = [a for a in c.spec.attachments() if a.network == record.name]
    net = found[0] if found else None
    return {
        "Name": c.name,
        "EndpointID": c.id,
        "MacAddress": net.mac if net else "",
        "IPv4Address": net.address if net else "",
        "IPv6Address": "",
    }


def view(record: NetworkRecord, containers: list[ContainerRecord] | None = None) -> dict[str, Any]:
    driver = "bridge" if record.bridge else ("host" if record.name == HOST else "null")
    config = _ipam_config(record)
    return {
        "Name": record.name,
        "Id": record.id,
        "Created": record.created_at,
        "Scope": "local",
        "Driver": driver,
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": record.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {c.id: _attached(record, c) for c in containers or []},
        "Options": {},
        "Labels": dict(record.labels),
    }


def _filtered(records: list[NetworkRecord], filters: dict[str, list[str]]) -> list[NetworkRecord]:
    def keep(r: NetworkRecord) -> bool:
        for key, wanted in filters.items():
            if key == "name" and not any(w in r.name for w in wanted):
                return False
            if key == "id" and not any(r.id.startswith(w) for w in wanted):
                return False
            if key == "driver" and view(r)["Driver"] not in wanted:
                return False
            if key == "type":
                kind = "builtin" if r.name in BUILTIN_NETWORKS else "custom"
                if kind not in wanted:
                    return False
            if key == "label":
                for item in wanted:
                    k, eq, v = item.partition("=")
                    if k not in r.labels or (eq and r.labels[k] != v):
                        return False
        return True

    return [r for r in records if keep(r)]


@router.get("/networks")
def list_networks(runtime: RuntimeDep, filters: str | None = None) -> list[dict[str, Any]]:
    records = _filtered(runtime.list_networks(), parse_filters(filters))
    return [view(r, runtime.network_containers(r.name)) for r in records]


@router.get("/networks/{ref}")
def inspect_network(ref: str, runtime: RuntimeDep) -> dict[str, Any]:
    record = runtime.get_network(ref)
    return view(record, runtime.network_containers(record.name))


class NetworkConfig(BaseModel):
    """The body of ``POST /networks/create``."""

    model_config = ConfigDict(extra="allow")

    Name: str
    Driver: str = "bridge"
    Internal: bool = False
    CheckDuplicate: bool = True
    Attachable: bool = False
    EnableIPv6: bool = False
    IPAM: dict[str, Any] | None = None
    Labels: dict[str, str] | None = None
    Options: dict[str, str] | None = None


def _ipam(config: NetworkConfig) -> dict[str, Any]:
    """``IPAM.Config``'s one IPv4 pool as ``create_network``'s keywords."""
    ipam = config.IPAM or {}
    if (ipam.get("Driver") or "default") != "default":
        raise DockerError(400, f"unsupported IPAM driver {ipam.get('Driver')!r}")
    if ipam.get("Options"):
        raise DockerError(400, "unsupported IPAM Options: the default driver takes none")
    entries = ipam.get("Config") or []
    if any(":" in (e.get("Subnet") or "") for e in entries):
        raise DockerError(400, "IPv6 subnets are not supported: mydocker's networks are IPv4 only")
    if len(entries) > 1:
        raise DockerError(400, "one IPAM config (one IPv4 subnet) per network")
    entry = entries[0] if entries else {}
    unsupported = set(entry) - {"Subnet", "Gateway", "IPRange", "AuxiliaryAddresses"}
    if any(entry.get(k) for k in unsupported):
        raise DockerError(400, f"unsupported IPAM option(s): {', '.join(sorted(unsupported))}")
    if (entry.get("IPRange") or entry.get("AuxiliaryAddresses")) and not entry.get("Subnet"):
        raise DockerError(400, "IPRange and AuxiliaryAddresses need a Subnet")
    return {
        "subnet": entry.get("Subnet") or None,
        "gateway": entry.get("Gateway") or None,
        "ip_range": entry.get("IPRange") or None,
        "aux_addresses": entry.get("AuxiliaryAddresses") or None,
    }


@router.post("/networks/create", status_code=status.HTTP_201_CREATED)
def create_network(runtime: RuntimeDep, config: Annotated[NetworkConfig, Body()]) -> dict[str, Any]:
    if config.Driver not in ("", "bridge"):
        raise DockerError(400, f"unsupported network driver {config.Driver!r}: only bridge")
    if config.EnableIPv6:
        raise DockerError(400, "EnableIPv6: mydocker's networks are IPv4 only")
    if config.Options or config.model_extra and any(config.model_extra.values()):
        raise DockerError(
            400, "unsupported network option(s): only Name, Driver, Internal, IPAM, Labels"
        )
    record = runtime.create_network(
        config.Name, internal=config.Internal, labels=config.Labels, **_ipam(config)
    )
    return {"Id": record.id, "Warning": ""}


@router.delete("/networks/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def remove_network(ref: str, runtime: RuntimeDep) -> Response:
    runtime.delete_network(ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/networks/prune")
def prune_networks(runtime: RuntimeDep, filters: str | None = None) -> dict[str, Any]:
    if parse_filters(filters):
        raise DockerError(400, "network prune filters are not supported")
    return {"NetworksDeleted": runtime.prune_networks()}


class EndpointRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    Container: str
    EndpointConfig: dict[str, Any] | None = None
    Force: bool = False


@router.post("/networks/{ref}/connect")
def connect(ref: str, runtime: RuntimeDep, body: Annotated[EndpointRequest, Body()]) -> Response:
    """One more network for a created or running container (runtime/connections.py)."""
    network = runtime.get_network(ref)
    settings = body.EndpointConfig or {}
    fields = endpoint(settings, network.name)
    aliases = tuple(dict.fromkeys(settings.get("Aliases") or []))
    runtime.connect_network(body.Container, network.name, aliases, endpoint_options(fields))
    return Response(status_code=status.HTTP_200_OK)


@router.post("/networks/{ref}/disconnect")
def disconnect(ref: str, runtime: RuntimeDep, body: Annotated[EndpointRequest, Body()]) -> Response:
    network = runtime.get_network(ref)
    runtime.disconnect_network(body.Container, network.name, body.Force)
    return Response(status_code=status.HTTP_200_OK)


def create_connected(runtime: RuntimeApi, config: Any, request: CreateRequest) -> str:
    """Create, then connect the networks beyond the first (each checked to
    exist first: an unknown one refuses the create); the container is
    removed again if one cannot be connected."""
    extras = extra_endpoints(config, request.network)
    for name, _, _ in extras:
        runtime.get_network(name)  # NotFound: 404 before anything is made
    options = [(n, tuple(a), endpoint_options(f)) for n, a, f in extras]
    record = runtime.create(request)
    try:
        for name, aliases, chosen in options:
            runtime.connect_network(record.id, name, aliases, chosen)
    except Exception:
        runtime.remove(record.id, force=True)
        raise
    return record.id


def endpoint_options(fields: dict[str, Any]) -> EndpointOptions:
    """The native ``endpoint`` fields, validated as the native API does (422s
    naming the field become Docker's 400s)."""
    try:
        return EndpointCreate.model_validate(fields).to_runtime()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DockerError(400, f"invalid endpoint setting {where}: {first['msg']}") from None


def default_network(request: Request) -> str:
    """The network ``docker run`` without ``--network`` gets (--docker-network)."""
    return getattr(request.app.state, "docker_network", BRIDGE)
