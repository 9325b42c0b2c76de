"""``/networks`` and the network fields of ``POST /containers`` (native),
against the fake runtime: validation, mapping, shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from runtime import ContainerRecord
from runtime.errors import Conflict, Forbidden
from runtime.network.attachment import Attachment, PortMapping
from runtime.spec import ContainerSpec, Status
from tests.fakes.network import ATTACHED, OnAnExhaustedHost
from tests.fakes.runtime import FakeRuntime

ID = "c" * 64
T0 = "2026-11-29T05:00:00Z"


def make_record(network: Attachment | None = None) -> ContainerRecord:
    spec = ContainerSpec(command=("true",), hostname=ID[:12], network=network)
    return ContainerRecord(
        id=ID, name="web", status=Status.running, spec=spec, created_at=T0, pid=7
    )


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime(make_record(ATTACHED))


def test_create_maps_network_ports_and_aliases(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "command": ["true"],
        "network": "backend",
        "ports": [
            {"container_port": 80},
            {"container_port": 53, "protocol": "udp", "host_port": 5353, "host_ip": "0.0.0.0"},
        ],
        "network_aliases": ["db"],
    }
    response = client.post("/containers", json=body)
    assert response.status_code == 201, response.text
    [(_, (request,), _)] = fake.commands()
    assert request.network == "backend"
    assert request.ports == (
        PortMapping(80, 0, "tcp", "127.0.0.1"),
        PortMapping(53, 5353, "udp", "0.0.0.0"),
    )
    assert request.network_aliases == ("db",)
    assert response.json()["network"] == {
        "mode": "bridge",
        "network": "backend",
        "ip_address": "10.1.0.2",
        "prefix_length": 24,
        "gateway": "10.1.0.1",
        "mac_address": "02:42:0a:01:00:02",
        "ports": [
            {"container_port": 80, "host_ip": "127.0.0.1", "host_port": 32768, "protocol": "tcp"}
        ],
        "aliases": ["db"],
        "interface": "eth0",
        "links": [],
    }
    assert response.json()["networks"] == [response.json()["network"]]


def test_the_default_is_none(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers", json={"command": ["true"]}).status_code == 201
    [(_, (request,), _)] = fake.commands()
    assert (request.network, request.ports, request.network_aliases) == ("none", (), ())
    fake.record = make_record(None)
    assert client.get(f"/containers/{ID}").json()["network"]["mode"] == "none"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"network": "no/slash"}, "network"),
        ({"network": ""}, "network"),
        ({"endpoint": {"ipv4_address": "10.1.0.300"}}, "ipv4_address"),
        ({"endpoint": {"mac_address": "02:42"}}, "mac_address"),
        ({"endpoint": {"mac_address": "01:00:5e:00:00:01"}}, "mac_address"),
        ({"endpoint": {"links": ["a:b:c"]}}, "links"),
        ({"endpoint": {"link_local_ips": ["fe80::1"]}}, "link_local_ips"),
        ({"endpoint": {"other": 1}}, "other"),
        ({"ports": [{"container_port": 0}]}, "container_port"),
        ({"ports": [{"container_port": 70000}]}, "container_port"),
        ({"ports": [{"container_port": 80, "host_port": -1}]}, "host_port"),
        ({"ports": [{"container_port": 80, "protocol": "sctp"}]}, "protocol"),
        ({"ports": [{"container_port": 80, "host_ip": "::1"}]}, "host_ip"),
        ({"ports": [{"container_port": 80, "extra": 1}]}, "extra"),
        ({"network_aliases": ["bad alias"]}, "network_aliases"),
    ],
)
def test_bad_network_fields_are_422(
    client: TestClient, fake: FakeRuntime, change: dict[str, Any], field: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], **change})
    assert response.status_code == 422
    assert field in response.text
    assert fake.commands() == []


def test_networks_are_created_listed_shown_and_removed(
    client: TestClient, fake: FakeRuntime
) -> None:
    body = {"name": "backend", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "internal": True}
    created = client.post("/networks", json=body)
    assert created.status_code == 201
    shown = created.json()
    assert (shown["name"], shown["subnet"], shown["gateway"], shown["internal"]) == (
        "backend",
        "10.1.0.0/24",
        "10.1.0.1",
        True,
    )
    assert shown["driver"] == "bridge" and shown["containers"] is None
    assert [n["name"] for n in client.get("/networks").json()] == ["backend"]
    inspected = client.get("/networks/backend").json()
    assert inspected["containers"] == [
        {"id": ID, "name": "web", "ip_address": "10.1.0.2", "mac_address": "02:42:0a:01:00:02"}
    ]
    assert client.delete("/networks/backend").status_code == 204
    assert client.get("/networks/backend").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "x", "ip_range": "10.0.0.1/24"}, "ip_range"),
        ({"name": "x", "aux_addresses": {"a": "nope"}}, "aux_addresses"),
        ({"name": "x", "subnet": "10.0.0.1/8"}, "subnet"),
        ({"name": "x", "subnet": "nope"}, "subnet"),
        ({"name": "x", "gateway": "nope"}, "gateway"),
        ({"name": "x", "internal": "yes"}, "internal"),
        ({"name": "x", "driver": "overlay"}, "driver"),
    ],
)
def test_bad_network_bodies_are_422(
    client: TestClient, fake: FakeRuntime, body: dict[str, Any], field: str
) -> None:
    response = client.post("/networks", json=body)
    assert response.status_code == 422
    assert field in response.text
    assert fake.commands() == []


@pytest.mark.parametrize(
    ("error", "code"), [(Conflict("in use"), 409), (Forbidden("builtin"), 403)]
)
def test_delete_refusals(
    client: TestClient, fake: FakeRuntime, error: Exception, code: int
) -> None:
    fake.errors["delete_network"] = error
    response = client.delete("/networks/bridge")
    assert response.status_code == code
    assert response.json()["detail"] == str(error)


def test_with_no_default_subnet_free_an_unknown_network_is_a_404_and_the_list_answers(
    tmp_path: Path,
) -> None:
    """A real ``Networks`` on a host whose routes take every default subnet:
    the bridge cannot be recorded, which only a container on it needs."""
    app = create_app(Settings(state_dir="/nonexistent"), runtime=OnAnExhaustedHost(tmp_path))
    with TestClient(app) as client:
        missing = client.get("/networks/nosuch")
        assert missing.status_code == 404, missing.text
        assert "nosuch" in missing.json()["detail"]
        listed = client.get("/networks")
        assert listed.status_code == 200, listed.text
        assert [n["name"] for n in listed.json()] == ["none", "host", "bridge"]
        bridge = client.get("/networks/bridge")
        assert bridge.status_code == 200, bridge.text
        assert bridge.json() == {**listed.json()[2], "containers": []}
        assert bridge.json()["driver"] == "bridge" and bridge.json()["builtin"]
        assert (bridge.json()["subnet"], bridge.json()["gateway"]) == (None, None)
