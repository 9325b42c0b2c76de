"""Docker's networking: the create body's network fields, inspect's
``NetworkSettings``, and ``/networks``.

    create_fields      HostConfig.NetworkMode, PortBindings, PublishAllPorts,
                       ExposedPorts, NetworkingConfig.EndpointsConfig (aliases)
                       -> the native ``network``, ``ports``, ``network_aliases``
    settings, ports    NetworkSettings of inspect, ``Ports`` of ps
    router             /networks: list, inspect, create, remove, prune,
                       connect, disconnect

Differences, documented in docs/networking.md: a container is on one network,
chosen at create (``connect`` of the network it is on is accepted, others
refused); a port binding without ``HostIp`` is published on 127.0.0.1, not
on every address, as the native API does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import BaseModel, ConfigDict

from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.params import parse_filters
from runtime import ContainerRecord
from runtime.network.attachment import BRIDGE, BUILTIN_NETWORKS, HOST, NONE
from runtime.records import NetworkRecord

router = APIRouter(tags=["docker networks"])

#: What Docker calls the default network: the service's choice (--docker-network).
DEFAULT_NAMES = ("", "default")
#: What an endpoint of ``NetworkingConfig`` may carry: aliases, and what the
#: CLI fills in on its own.
ENDPOINT_KEYS = ("Aliases", "DNSNames", "NetworkID", "EndpointID")


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


def create_fields(config: Any, default: str, image_ports: Iterable[str] = ()) -> dict[str, Any]:
    """The native create body's network fields from Docker's; ``image_ports``
    are the image's ExposedPorts."""
    host = config.host()
    mode = host.NetworkMode or ""
    endpoints: dict[str, Any] = (config.NetworkingConfig or {}).get("EndpointsConfig") or {}
    named = [n for n in endpoints if n not in DEFAULT_NAMES]
    if mode.startswith("container:"):
        raise DockerError(400, "unsupported NetworkMode container:<id>: use a network")
    if mode in DEFAULT_NAMES:
        if len(named) > 1:
            raise DockerError(400, "a mydocker container is on one network: name one")
        mode = named[0] if named else default
    elif mode == "private":
        mode = NONE
    for name, endpoint in endpoints.items():
        extra = {k for k, v in (endpoint or {}).items() if k not in ENDPOINT_KEYS and v}
        if extra:
            raise DockerError(
                400, f"unsupported option(s) of network {name}: {', '.join(sorted(extra))}"
            )
    aliases: list[str] = []
    for name, settings in endpoints.items():
        if name == mode or (name in DEFAULT_NAMES and mode == default):
            aliases += (settings or {}).get("Aliases") or []
    if mode in (NONE, HOST, BRIDGE):
        aliases = []  # Docker keeps aliases to user networks; the CLI sends none for these
    return {
        "network": mode,
        "ports": _bindings(host, [*(config.ExposedPorts or {}), *image_ports]),
        "network_aliases": list(dict.fromkeys(aliases)),
    }


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


def _endpoint(record: ContainerRecord, network_id: str = "") -> dict[str, Any]:
    net = record.spec.network
    assert net is not None
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": list(net.aliases) or None,
        "MacAddress": net.mac,
        "NetworkID": network_id,
        "EndpointID": record.id if net.bridged else "",
        "Gateway": net.gateway,
        "IPAddress": net.ip,
        "IPPrefixLen": net.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def settings(record: ContainerRecord, network_id: str = "") -> dict[str, Any]:
    """``NetworkSettings`` of inspect (the top-level fields are the bridge's, as Docker's)."""
    net = record.spec.network
    live = record.status.value != "exited"
    networks = {net.network: _endpoint(record, network_id)} if net is not None and live else {}
    bridged = net is not None and net.bridged and live
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
def view(record: NetworkRecord, containers: list[ContainerRecord] | None = None) -> dict[str, Any]:
    driver = "bridge" if record.bridge else ("host" if record.name == HOST else "null")
    config = [{"Subnet": record.subnet, "Gateway": record.gateway}] if record.subnet else []
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
        "Containers": {
            c.id: {
                "Name": c.name,
                "EndpointID": c.id,
                "MacAddress": c.spec.network.mac if c.spec.network else "",
                "IPv4Address": c.spec.network.address if c.spec.network else "",
                "IPv6Address": "",
            }
            for c in containers or []
        },
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


def _ipam(config: NetworkConfig) -> tuple[str | None, str | None]:
    ipam = config.IPAM or {}
    if (ipam.get("Driver") or "default") != "default":
        raise DockerError(400, f"unsupported IPAM driver {ipam.get('Driver')!r}")
    entries = ipam.get("Config") or []
    if len(entries) > 1:
        raise DockerError(400, "one IPAM config (one IPv4 subnet) per network")
    entry = entries[0] if entries else {}
    unsupported = set(entry) - {"Subnet", "Gateway"}
    if any(entry.get(k) for k in unsupported):
        raise DockerError(400, f"unsupported IPAM option(s): {', '.join(sorted(unsupported))}")
    return entry.get("Subnet") or None, entry.get("Gateway") or None


@router.post("/networks/create", status_code=status.HTTP_201_CREATED)
def create_network(runtime: RuntimeDep, config: Annotated[NetworkConfig, Body()]) -> dict[str, Any]:
    if config.Driver not in ("", "bridge"):
        raise DockerError(400, f"unsupported network driver {config.Driver!r}: only bridge")
    if (
        config.EnableIPv6
        or config.Options
        or config.model_extra
        and any(config.model_extra.values())
    ):
        raise DockerError(
            400, "unsupported network option(s): only Name, Driver, Internal, IPAM, Labels"
        )
    subnet, gateway = _ipam(config)
    record = runtime.create_network(config.Name, subnet, gateway, config.Internal, config.Labels)
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
    """A container is on the one network it was created with: connecting it
    to that one is a no-op, to another a 400 that says so."""
    network = runtime.get_network(ref)
    container = runtime.get(body.Container)
    if network_mode(container) != network.name:
        raise DockerError(
            400,
            f"container {container.name} is on network {network_mode(container)!r}: a mydocker "
            "container is on one network, chosen at create (docker run --network)",
        )
    return Response(status_code=status.HTTP_200_OK)


@router.post("/networks/{ref}/disconnect")
def disconnect(ref: str, runtime: RuntimeDep, body: Annotated[EndpointRequest, Body()]) -> Response:
    network = runtime.get_network(ref)
    container = runtime.get(body.Container)
    if network_mode(container) == network.name and container.status.value != "exited":
        raise DockerError(
            400, f"container {container.name} cannot leave its network while it lives: remove it"
        )
    return Response(status_code=status.HTTP_200_OK)


def default_network(request: Request) -> str:
    """The network ``docker run`` without ``--network`` gets (--docker-network)."""
    return getattr(request.app.state, "docker_network", BRIDGE)
