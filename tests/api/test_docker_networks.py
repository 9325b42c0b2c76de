"""Docker's networking over the fake runtime: the create body's network
fields mapped onto the native ones, inspect's NetworkSettings, /networks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from runtime import ContainerRecord
from runtime.images import Image
from runtime.images.oci import ImageConfig
from runtime.network.attachment import EndpointOptions, PortMapping
from runtime.spec import ContainerSpec, Status
from tests.fakes.network import ATTACHED, OnAnExhaustedHost
from tests.fakes.runtime import FakeRuntime

ID = "d" * 64
T0 = "2026-11-29T05:00:00Z"
CREATE = "/v1.47/containers/create"


@pytest.fixture
def fake() -> FakeRuntime:
    attached = replace(ATTACHED, ports=(*ATTACHED.ports, PortMapping(53, 5353, "udp", "0.0.0.0")))
    spec = ContainerSpec(command=("true",), hostname=ID[:12], network=attached)
    record = ContainerRecord(
        id=ID, name="web", status=Status.running, spec=spec, created_at=T0, pid=7
    )
    fake = FakeRuntime(record)
    fake.create_network("backend", "10.1.0.0/24", "10.1.0.1")
    fake.calls.clear()
    return fake


def created(client: TestClient, fake: FakeRuntime, **body: Any) -> Any:
    response = client.post(CREATE, json={"Image": "host", "Cmd": ["true"], **body})
    assert response.status_code == 201, response.text
    [(_, (request,), _)] = fake.commands()
    return request


def test_no_network_named_is_the_default_bridge(client: TestClient, fake: FakeRuntime) -> None:
    request = created(client, fake, HostConfig={"NetworkMode": "default"})
    assert (request.network, request.ports) == ("bridge", ())


def test_network_mode_port_bindings_and_aliases(client: TestClient, fake: FakeRuntime) -> None:
    request = created(
        client,
        fake,
        ExposedPorts={"80/tcp": {}, "53/udp": {}, "9000/tcp": {}},
        HostConfig={
            "NetworkMode": "backend",
            "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": ""}],
            },
            "PublishAllPorts": True,
        },
        NetworkingConfig={"EndpointsConfig": {"backend": {"Aliases": ["db", "cache"]}}},
    )
    assert request.network == "backend"
    assert request.ports == (
        PortMapping(80, 8080, "tcp", "127.0.0.1"),
        PortMapping(53, 0, "udp", "0.0.0.0"),
        PortMapping(9000, 0, "tcp", "127.0.0.1"),
    )
    assert request.network_aliases == ("db", "cache")


def test_publish_all_ports_publishes_the_images_exposed_ports_too(
    client: TestClient, fake: FakeRuntime
) -> None:
    config = ImageConfig(cmd=("true",), exposed_ports=("8080/tcp", "53/udp", "9000/tcp"))
    fake.images.append(Image("localhost:5000/app:1", False, None, kind="pulled", config=config))
    body: dict[str, Any] = {
        "Image": "localhost:5000/app:1",
        "ExposedPorts": {"9000/tcp": {}, "7000/tcp": {}},
        "HostConfig": {"PortBindings": {"53/udp": [{"HostPort": "5353"}]}},
    }
    # without PublishAllPorts the image's ports stay unpublished, as in Docker
    assert created(client, fake, **body).ports == (PortMapping(53, 5353, "udp", "127.0.0.1"),)
    fake.calls.clear()
    body["HostConfig"]["PublishAllPorts"] = True
    assert created(client, fake, **body).ports == (
        PortMapping(53, 5353, "udp", "127.0.0.1"),  # bound already: not twice
        PortMapping(9000, 0, "tcp", "127.0.0.1"),
        PortMapping(7000, 0, "tcp", "127.0.0.1"),
        PortMapping(8080, 0, "tcp", "127.0.0.1"),
    )


def test_an_endpoint_alone_names_the_network(client: TestClient, fake: FakeRuntime) -> None:
    request = created(client, fake, NetworkingConfig={"EndpointsConfig": {"backend": {}}})
    assert request.network == "backend"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"HostConfig": {"NetworkMode": "container:x"}}, "container:"),
        (
            {
                "NetworkingConfig": {
                    "EndpointsConfig": {"a": {"IPAMConfig": {"IPv6Address": "2001:db8::3"}}}
                }
            },
            "IPAMConfig",
        ),
        (
            {"NetworkingConfig": {"EndpointsConfig": {"a": {"IPAMConfig": {"IPv4Address": "x"}}}}},
            "ipv4_address",
        ),
        (
            {"NetworkingConfig": {"EndpointsConfig": {"a": {"MacAddress": "01:00:5e:00:00:01"}}}},
            "multicast",
        ),
        ({"NetworkingConfig": {"EndpointsConfig": {"a": {"Foo": 1}}}}, "Foo"),
        ({"HostConfig": {"PortBindings": {"x/tcp": []}}}, "invalid port"),
        ({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "http"}]}}}, "host port"),
    ],
)
def test_network_options_we_cannot_honour_are_400s(
    client: TestClient, fake: FakeRuntime, body: dict[str, Any], says: str
) -> None:
    response = client.post(CREATE, json={"Image": "host", "Cmd": ["true"], **body})
    assert response.status_code == 400, response.text
    assert says in response.json()["message"]
    assert fake.commands() == []


def test_inspect_shows_network_settings_and_ports(client: TestClient) -> None:
    shown = client.get(f"/v1.47/containers/{ID}/json").json()
    settings = shown["NetworkSettings"]
    assert (settings["IPAddress"], settings["Gateway"], settings["MacAddress"]) == (
        "10.1.0.2",
        "10.1.0.1",
        "02:42:0a:01:00:02",
    )
    assert settings["Ports"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
    }
    endpoint = settings["Networks"]["backend"]
    assert (endpoint["IPAddress"], endpoint["IPPrefixLen"], endpoint["Aliases"]) == (
        "10.1.0.2",
        24,
        ["db", ID[:12]],  # API 1.44's short id among a user network's aliases
    )
    assert endpoint["DNSNames"] == ["web", ID[:12], "db"]
    assert (endpoint["IPAMConfig"], endpoint["DriverOpts"], endpoint["Links"]) == (None, None, None)
    assert shown["HostConfig"]["NetworkMode"] == "backend"
    listed = client.get("/v1.47/containers/json").json()[0]
    assert listed["Ports"][0] == {
        "IP": "127.0.0.1",
        "PrivatePort": 80,
        "PublicPort": 32768,
        "Type": "tcp",
    }


def test_networks_list_inspect_create_remove(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "Name": "front",
        "Driver": "bridge",
        "CheckDuplicate": True,
        "Internal": True,
        "IPAM": {
            "Driver": "default",
            "Config": [
                {
                    "Subnet": "10.2.0.0/24",
                    "Gateway": "10.2.0.1",
                    "IPRange": "10.2.0.128/25",
                    "AuxiliaryAddresses": {"router": "10.2.0.2"},
                }
            ],
        },
        "Labels": {"team": "a"},
    }
    response = client.post("/v1.47/networks/create", json=body)
    assert response.status_code == 201
    assert set(response.json()) == {"Id", "Warning"}
    assert (
        "create_network",
        ("front",),
        {
            "internal": True,
            "labels": {"team": "a"},
            "subnet": "10.2.0.0/24",
            "gateway": "10.2.0.1",
            "ip_range": "10.2.0.128/25",
            "aux_addresses": {"router": "10.2.0.2"},
        },
    ) in fake.calls
    front = client.get("/v1.47/networks/front").json()
    assert front["IPAM"]["Config"] == body["IPAM"]["Config"]  # type: ignore[index]
    names = [n["Name"] for n in client.get("/v1.47/networks").json()]
    assert names == ["backend", "front"]
    labelled = client.get("/v1.47/networks", params={"filters": '{"label": ["team=a"]}'}).json()
    assert [n["Name"] for n in labelled] == ["front"]
    shown = client.get("/v1.47/networks/backend").json()
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}]
    assert shown["Containers"][ID]["IPv4Address"] == "10.1.0.2/24"
    assert client.delete("/v1.47/networks/front").status_code == 204
    assert client.post("/v1.47/networks/prune").json() == {"NetworksDeleted": []}


@pytest.mark.parametrize(
    "body",
    [
        {"Name": "x", "Driver": "overlay"},
        {"Name": "x", "EnableIPv6": True},
        {"Name": "x", "IPAM": {"Config": [{"Subnet": "10.0.0.0/24"}, {"Subnet": "10.1.0.0/24"}]}},
        {"Name": "x", "IPAM": {"Config": [{"IPRange": "10.0.0.0/25"}]}},  # no Subnet
        {"Name": "x", "IPAM": {"Config": [{"Subnet": "2001:db8::/64"}]}},
        {"Name": "x", "IPAM": {"Options": {"a": "b"}}},
        {"Name": "x", "Options": {"com.docker.network.bridge.name": "br0"}},
    ],
)
def test_network_options_we_lack_are_400s(
    client: TestClient, fake: FakeRuntime, body: dict[str, Any]
) -> None:
    assert client.post("/v1.47/networks/create", json=body).status_code == 400
    assert fake.commands() == []


def test_connect_and_disconnect_map_onto_the_runtime(client: TestClient, fake: FakeRuntime) -> None:
    config = {
        "Aliases": ["db", "db"],
        "IPAMConfig": {"IPv4Address": "10.1.0.9", "LinkLocalIPs": ["169.254.8.8"]},
        "MacAddress": "02:42:0A:01:00:09",
        "DriverOpts": {"k": "v"},
        "Links": ["/cache:/web/store", "queue"],
    }
    body: dict[str, Any] = {"Container": "web", "EndpointConfig": config}
    assert client.post("/v1.47/networks/backend/connect", json=body).status_code == 200
    options = EndpointOptions(
        "10.1.0.9", "02:42:0a:01:00:09", {"k": "v"}, ("cache:store", "queue"), ("169.254.8.8",)
    )
    assert ("connect_network", ("web", "backend", ("db",), options), {}) in fake.calls
    body = {"Container": "web", "Force": True}
    assert client.post("/v1.47/networks/backend/disconnect", json=body).status_code == 200
    assert ("disconnect_network", ("web", "backend", True), {}) in fake.calls


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"IPAMConfig": {"IPv6Address": "2001:db8::3"}}, "IPv6"),
        ({"IPAMConfig": {"LinkLocalIPs": ["fe80::1"]}}, "IPv6"),
        ({"IPAMConfig": {"IPv4Address": "10.1.0.300"}}, "ipv4_address"),
        ({"Links": ["a:b:c"]}, "links"),
    ],
)
def test_a_connect_it_cannot_honour_is_a_400(
    client: TestClient, fake: FakeRuntime, config: dict[str, Any], says: str
) -> None:
    body = {"Container": "web", "EndpointConfig": config}
    response = client.post("/v1.47/networks/backend/connect", json=body)
    assert response.status_code == 400 and says in response.json()["message"]
    assert "connect_network" not in [c[0] for c in fake.calls]


def test_create_connects_the_networks_beyond_the_first(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.create_network("other")
    endpoints = {"backend": {"Aliases": ["a"]}, "other": {"Aliases": ["b"]}}
    body = {
        "HostConfig": {"NetworkMode": "backend"},
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    response = client.post(CREATE, json={"Image": "host", "Cmd": ["true"], **body})
    assert response.status_code == 201, response.text
    commands = [c for c in fake.calls if c[0] in ("create", "connect_network")]
    [create, connect] = commands
    assert (create[1][0].network, create[1][0].network_aliases) == ("backend", ("a",))
    assert connect == ("connect_network", (ID, "other", ("b",), EndpointOptions()), {})
    endpoints["missing"] = {}
    response = client.post(CREATE, json={"Image": "host", "Cmd": ["true"], **body})
    assert response.status_code == 404
    assert "missing" in response.json()["message"]


def test_the_default_network_is_the_services_setting(fake: FakeRuntime) -> None:
    from app.config import Settings
    from app.main import create_app

    app = create_app(Settings(state_dir="/nonexistent", docker_network="none"), runtime=fake)
    with TestClient(app) as client:
        request = created(client, fake)
    assert request.network == "none"


def test_with_no_default_subnet_free_an_unknown_network_is_a_404_and_the_list_answers(
    tmp_path: Path,
) -> None:
    """As the native API's (tests/api/test_networks.py): a real ``Networks``
    on a host whose routes take every default subnet."""
    app = create_app(Settings(state_dir="/nonexistent"), runtime=OnAnExhaustedHost(tmp_path))
    with TestClient(app) as client:
        missing = client.get("/v1.47/networks/nosuch")
        assert missing.status_code == 404, missing.text
        assert "nosuch" in missing.json()["message"]
        listed = client.get("/v1.47/networks")
        assert listed.status_code == 200, listed.text
        assert [n["Name"] for n in listed.json()] == ["none", "host", "bridge"]
        bridge = client.get("/v1.47/networks/bridge").json()
        assert bridge == listed.json()[2]
        assert (bridge["Driver"], bridge["IPAM"]["Config"]) == ("bridge", [])
