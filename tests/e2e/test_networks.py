"""Networks end to end: a real service in a namespace of the test's own
(tests/e2e/netservice.py), real containers on bridges.

Addresses and routes, the /etc files, reach by address and by name on a
user network, isolation between networks, published ports (tcp and udp)
from the host side, clashes, ``/networks``' rules, and clean-up after a
restart and after a crash of the API and the launcher.  Traffic goes only
between the test's namespace and the containers' (docs/networking.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import unique
from tests.e2e.netservice import Namespace, NetService

#: A TCP and UDP echo server in the container (the host image has python3).
ECHO = """
import socket, sys, threading
port = int(sys.argv[1])
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen()
    while True:
        c, _ = s.accept(); c.sendall(b"echo:" + c.recv(100)); c.close()
threading.Thread(target=tcp, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port))
print("ready", flush=True)
while True:
    data, peer = u.recvfrom(100); u.sendto(b"udp:" + data, peer)
"""

#: A client: connect to argv[1]:argv[2] (a name is resolved), print the answer.
CLIENT = """
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    address = socket.gethostbyname(host)
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
        s.sendto(b"hi", (address, port)); print(s.recv(100).decode())
    else:
        s = socket.create_connection((address, port), timeout=3)
        s.sendall(b"hi"); print(s.recv(100).decode())
except OSError as err:
    print("failed:", type(err).__name__, err)
"""


@pytest.fixture
def client(net_service: NetService) -> Iterator[httpx.Client]:
    with net_service.client() as c:
        yield c


def network(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/networks", json={"name": unique("net"), **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def run(client: httpx.Client, command: list[str], **spec: Any) -> dict[str, Any]:
    response = client.post(
        "/containers", params={"wait": "true"}, json={"command": command, **spec}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def logs(client: httpx.Client, ref: str) -> str:
    return client.get(f"/containers/{ref}/logs").text


def server(client: httpx.Client, port: int = 8000, **spec: Any) -> dict[str, Any]:
    """An echo server container, once it listens."""
    response = client.post(
        "/containers", json={"command": ["python3", "-c", ECHO, str(port)], **spec}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    deadline = time.monotonic() + 20
    while "ready" not in logs(client, created["id"]):
        assert time.monotonic() < deadline, logs(client, created["id"])
        time.sleep(0.05)
    return created


def ask(client: httpx.Client, network_name: str, host: str, port: int, proto: str = "tcp") -> str:
    done = run(client, ["python3", "-c", CLIENT, host, str(port), proto], network=network_name)
    return logs(client, done["id"]).strip()


def kill(client: httpx.Client, *refs: str) -> None:
    for ref in refs:
        client.post(f"/containers/{ref}/kill")
        client.post(f"/containers/{ref}/wait")


# -- addresses, routes, files ---------------------------------------------------
def test_a_container_on_a_user_network_has_its_address_route_and_files(
    client: httpx.Client,
) -> None:
    net = network(client, subnet="10.77.0.0/24")
    name = unique("c")
    command = "ip -o -4 addr show eth0; ip route; cat /etc/resolv.conf /etc/hosts; hostname"
    done = run(client, ["sh", "-c", command], network=net["name"], name=name)
    assert done["exit_code"] == 0, done
    attached = done["network"]
    assert attached["mode"] == "bridge" and attached["network"] == net["name"]
    assert attached["ip_address"] == "10.77.0.2" and attached["prefix_length"] == 24
    assert attached["gateway"] == "10.77.0.1" == net["gateway"]
    assert attached["mac_address"] == "02:42:0a:4d:00:02"
    out = logs(client, name)
    assert "inet 10.77.0.2/24" in out
    assert "default via 10.77.0.1 dev eth0" in out
    assert "nameserver 10.77.0.1" in out
    assert f"10.77.0.2\t{done['hostname']} {name}" in out


def test_addresses_are_distinct_and_reused_after_exit(client: httpx.Client) -> None:
    net = network(client, subnet="10.78.0.0/24")
    first = server(client, network=net["name"])
    second = run(client, ["true"], network=net["name"])
    assert (first["network"]["ip_address"], second["network"]["ip_address"]) == (
        "10.78.0.2",
        "10.78.0.3",
    )
    kill(client, first["id"])
    again = run(client, ["true"], network=net["name"])
    assert again["network"]["ip_address"] == "10.78.0.2"


def test_none_is_the_default_and_host_shares_the_namespace(
    client: httpx.Client, netns: Namespace
) -> None:
    alone = run(client, ["sh", "-c", "ls /sys/class/net"])
    assert alone["network"]["mode"] == "none" and alone["network"]["ip_address"] == ""
    assert logs(client, alone["id"]).split() == ["lo"]
    netns.ip("link", "add", "probe0", "type", "bridge")
    try:
        shared = run(client, ["sh", "-c", "ip -o link show probe0"], network="host")
        assert shared["network"]["mode"] == "host"
        assert "probe0" in logs(client, shared["id"])
    finally:
        netns.ip("link", "del", "probe0")


# -- reach and isolation --------------------------------------------------------
def test_containers_reach_each_other_by_address_name_and_alias(client: httpx.Client) -> None:
    net = network(client)
    name = unique("srv")
    srv = server(client, network=net["name"], name=name, network_aliases=["db"])
    ip = srv["network"]["ip_address"]
    try:
        assert ask(client, net["name"], ip, 8000) == "echo:hi"
        assert ask(client, net["name"], name, 8000) == "echo:hi"
        assert ask(client, net["name"], "db", 8000, "udp") == "udp:hi"
        assert ask(client, net["name"], srv["id"][:12], 8000) == "echo:hi"
        assert "gaierror" in ask(client, net["name"], "nosuchname", 8000)
    finally:
        kill(client, srv["id"])


def test_networks_are_isolated_from_each_other(client: httpx.Client) -> None:
    a, b = network(client), network(client)
    srv = server(client, network=a["name"], name=unique("srv"))
    try:
        answer = ask(client, b["name"], srv["network"]["ip_address"], 8000)
        assert answer.startswith("failed:"), answer
        assert "gaierror" in ask(client, b["name"], srv["name"], 8000)  # nor its name
    finally:
        kill(client, srv["id"])


# -- published ports --------------------------------------------------------------
def host_side(netns: Namespace, host: str, port: int, proto: str = "tcp") -> str:
    argv = json.dumps(["x", host, str(port), proto])
    return netns.run(f"import sys; sys.argv = {argv}\n{CLIENT}").strip()


def test_published_ports_answer_from_the_host_side(client: httpx.Client, netns: Namespace) -> None:
    net = network(client)
    ports = [
        {"container_port": 8000},
        {"container_port": 8000, "protocol": "udp", "host_port": 0},
        {"container_port": 8000, "host_ip": "0.0.0.0"},
    ]
    srv = server(client, network=net["name"], ports=ports)
    try:
        tcp, udp, everywhere = srv["network"]["ports"]
        assert tcp["host_ip"] == "127.0.0.1" and tcp["host_port"] > 0
        assert host_side(netns, "127.0.0.1", tcp["host_port"]) == "echo:hi"
        assert host_side(netns, "127.0.0.1", udp["host_port"], "udp") == "udp:hi"
        # 0.0.0.0: every address of the host, the bridge's gateway address among them.
        assert host_side(netns, net["gateway"], everywhere["host_port"]) == "echo:hi"
        # A container reaches a published port through the host's address too.
        assert ask(client, net["name"], net["gateway"], everywhere["host_port"]) == "echo:hi"
        assert client.get(f"/containers/{srv['id']}").json()["network"]["ports"] == [
            tcp,
            udp,
            everywhere,
        ]
    finally:
        kill(client, srv["id"])
    ruleset = netns.nft("list", "table", "inet", "mydocker").stdout
    assert str(tcp["host_port"]) not in ruleset  # unpublished at exit


def test_a_port_in_use_is_a_409_and_is_free_again_after_exit(
    client: httpx.Client, netns: Namespace
) -> None:
    net = network(client)
    srv = server(client, network=net["name"], ports=[{"container_port": 8000}])
    port = srv["network"]["ports"][0]["host_port"]
    body = {"command": ["true"], "network": net["name"]}
    clash = client.post(
        "/containers", json={**body, "ports": [{"container_port": 1, "host_port": port}]}
    )
    assert clash.status_code == 409, clash.text
    assert f"port {port}/tcp" in clash.json()["detail"]
    twice = [
        {"container_port": 1, "host_port": port + 1},
        {"container_port": 2, "host_port": port + 1},
    ]
    assert client.post("/containers", json={**body, "ports": twice}).status_code == 409
    kill(client, srv["id"])
    again = client.post(
        "/containers", json={**body, "ports": [{"container_port": 8000, "host_port": port}]}
    )
    assert again.status_code == 201, again.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"network": "none", "ports": [{"container_port": 80}]}, "ports"),
        ({"network": "host", "ports": [{"container_port": 80}]}, "ports"),
        ({"network": "bridge", "network_aliases": ["x"]}, "network_aliases"),
        ({"network": "bridge", "ports": [{"container_port": 0}]}, "container_port"),
        ({"network": "bridge", "ports": [{"container_port": 1, "protocol": "sctp"}]}, "protocol"),
        ({"network": "bridge", "ports": [{"container_port": 1, "host_ip": "nope"}]}, "host_ip"),
        (
            {"network": "bridge", "ports": [{"container_port": 1, "host_ip": "192.0.2.1"}]},
            "host_ip",
        ),
        ({"network": "bad/name"}, "network"),
    ],
)
def test_bad_network_requests_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], **body})
    assert response.status_code == 422, response.text
    assert field in response.text


def test_an_unknown_network_is_a_404(client: httpx.Client) -> None:
    response = client.post("/containers", json={"command": ["true"], "network": "nosuch"})
    assert response.status_code == 404
    assert "nosuch" in response.json()["detail"]


# -- /networks ---------------------------------------------------------------------
def test_networks_are_listed_inspected_and_removed(client: httpx.Client, netns: Namespace) -> None:
    listed = [n["name"] for n in client.get("/networks").json()]
    assert listed[:3] == ["none", "host", "bridge"]
    net = network(client, internal=True)
    assert net["internal"] is True and net["driver"] == "bridge"
    assert net["name"] in [n["name"] for n in client.get("/networks").json()]
    srv = server(client, network=net["name"])
    shown = client.get(f"/networks/{net['name']}").json()
    assert shown["containers"] == [
        {
            "id": srv["id"],
            "name": srv["name"],
            "ip_address": srv["network"]["ip_address"],
            "mac_address": srv["network"]["mac_address"],
        }
    ]
    busy = client.delete(f"/networks/{net['name']}")
    assert busy.status_code == 409 and srv["name"] in busy.json()["detail"]
    kill(client, srv["id"])
    bridge = f"mdk-{net['id'][:11]}"
    assert bridge in netns.ip("-o", "link")
    assert client.delete(f"/networks/{net['id'][:12]}").status_code == 204
    assert client.get(f"/networks/{net['name']}").status_code == 404
    assert bridge not in netns.ip("-o", "link")
    assert client.delete(f"/networks/{net['name']}").status_code == 404


@pytest.mark.parametrize("name", ["none", "host", "bridge"])
def test_builtins_cannot_be_made_or_removed(client: httpx.Client, name: str) -> None:
    assert client.post("/networks", json={"name": name}).status_code == 409
    assert client.delete(f"/networks/{name}").status_code == 403


def test_network_rules(client: httpx.Client, netns: Namespace) -> None:
    taken = network(client, subnet="10.90.0.0/16")
    clash = client.post("/networks", json={"name": unique("n"), "subnet": "10.90.4.0/24"})
    assert clash.status_code == 409 and taken["name"] in clash.json()["detail"]
    again = client.post("/networks", json={"name": taken["name"]})
    assert again.status_code == 409
    netns.ip("link", "add", "probe1", "type", "bridge")
    netns.ip("addr", "add", "10.91.0.1/16", "dev", "probe1")
    netns.ip("link", "set", "probe1", "up")
    try:
        route = client.post("/networks", json={"name": unique("n"), "subnet": "10.91.1.0/24"})
        assert route.status_code == 409 and "route 10.91.0.0/16" in route.json()["detail"]
    finally:
        netns.ip("link", "del", "probe1")
    for body, field in [
        ({"name": "bad/name"}, "name"),
        ({"name": " "}, "name"),
        ({"name": "x", "subnet": "10.1.0.1/16"}, "subnet"),
        ({"name": "x", "subnet": "10.1.0.0/31"}, "subnet"),
        ({"name": "x", "subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}, "gateway"),
        ({"name": "x", "internal": "yes"}, "internal"),
    ]:
        response = client.post("/networks", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text


# -- restarts ----------------------------------------------------------------------
def veths(netns: Namespace) -> list[str]:
    """Host ends by name, or by the alternative name a pooled child's end
    has (the container's veth name, plumbing.py)."""
    found = []
    for line in netns.ip("-o", "link").splitlines():
        words = line.split()
        names = [line.split(":")[1].strip().split("@")[0]]
        names += [words[i + 1] for i, word in enumerate(words[:-1]) if word == "altname"]
        found += [n for n in names if n.startswith("veth")]
    return found


def wait_until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_api_restart_keeps_containers_ports_and_names(netns: Namespace, tmp_path: Path) -> None:
    svc = NetService(netns, tmp_path / "state")
    svc.start()
    try:
        with svc.client() as c:
            net = network(c)
            srv = server(
                c, network=net["name"], name=unique("srv"), ports=[{"container_port": 8000}]
            )
        port = srv["network"]["ports"][0]["host_port"]
        svc.stop()
        svc.start()
        with svc.client() as c:
            assert c.get(f"/containers/{srv['id']}").json()["status"] == "running"
            assert host_side(netns, "127.0.0.1", port) == "echo:hi"
            assert ask(c, net["name"], srv["name"], 8000) == "echo:hi"
            kill(c, srv["id"])
    finally:
        svc.close()


def test_a_crash_of_api_and_launcher_leaves_nothing_behind(
    netns: Namespace, tmp_path: Path
) -> None:
    svc = NetService(netns, tmp_path / "state")
    svc.start()
    try:
        with svc.client() as c:
            net = network(c)
            srv = server(c, network=net["name"], ports=[{"container_port": 8000}])
            gone = network(c)
        port = srv["network"]["ports"][0]["host_port"]
        assert srv["network"]["ports"][0]["host_port"] and veths(netns)
        svc.kill_all()
        # A bridge of a network the records no longer have (as if removed
        # while the service was down) must go at start.
        netns.ip("link", "add", "mdk-0123456789a", "type", "bridge")
        svc.start()
        with svc.client() as c:
            record = c.get(f"/containers/{srv['id']}").json()
            assert record["status"] == "exited"
            wait_until(lambda: not veths(netns))
            assert "mdk-0123456789a" not in netns.ip("-o", "link")
            assert f"mdk-{gone['id'][:11]}" not in veths(netns)
            assert str(port) not in netns.nft("list", "table", "inet", "mydocker").stdout
            # The port and the address are free again.
            again = server(
                c, network=net["name"], ports=[{"container_port": 8000, "host_port": port}]
            )
            assert again["network"]["ip_address"] == srv["network"]["ip_address"]
            assert host_side(netns, "127.0.0.1", port) == "echo:hi"
            kill(c, again["id"])
    finally:
        svc.close()


def test_with_every_default_subnet_taken_only_a_container_on_bridge_is_refused(
    tmp_path: Path,
) -> None:
    """The host's routes cover 172.16.0.0/12 and 192.168.0.0/16, every
    default subnet: lookups, the list and user networks with a subnet of
    their own work; a container on ``bridge`` is a 409 until a subnet is free."""
    netns = Namespace()
    svc = NetService(netns, tmp_path / "state")
    try:
        netns.ip("link", "add", "taken0", "type", "bridge")
        netns.ip("link", "set", "taken0", "up")
        for cidr in ("172.16.0.1/12", "192.168.0.1/16"):
            netns.ip("addr", "add", cidr, "dev", "taken0")
        svc.start()
        with svc.client() as c:
            for path in ("/networks/nosuch", "/v1.47/networks/nosuch"):
                missing = c.get(path)
                assert missing.status_code == 404, missing.text
            listed = c.get("/networks").json()
            assert [(n["name"], n["subnet"]) for n in listed] == [
                ("none", None),
                ("host", None),
                ("bridge", None),
            ]
            assert c.get("/v1.47/networks/bridge").json()["IPAM"]["Config"] == []
            refused = c.post("/containers", json={"command": ["true"], "network": "bridge"})
            assert refused.status_code == 409, refused.text
            assert "'bridge' has no subnet" in refused.json()["detail"]
            assert c.get("/containers").json() == []  # nothing recorded
            net = network(c, subnet="10.77.0.0/24")
            done = run(c, ["cat", "/etc/hosts"], network=net["name"])
            assert done["exit_code"] == 0 and done["network"]["ip_address"] == "10.77.0.2"
            netns.ip("addr", "del", "192.168.0.1/16", "dev", "taken0")
            bridge = c.get("/networks/bridge").json()
            assert (bridge["subnet"], bridge["gateway"]) == ("192.168.0.0/20", "192.168.0.1")
            on_bridge = run(c, ["true"], network="bridge")
            assert on_bridge["exit_code"] == 0
            assert on_bridge["network"]["ip_address"] == "192.168.0.2"
    finally:
        svc.close()
        netns.close()
