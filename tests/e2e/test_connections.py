"""Connect and disconnect end to end (runtime/connections.py): a real
service in a namespace of the test's own (tests/e2e/netservice.py), real
containers that join a second network while they run, reach and are
reached there by address and by alias, and leave it again.

Also the IPAM options of a network (range, auxiliary addresses), static
addresses and MACs, link-local addresses and links, and what a restart of
the service and a container's exit leave behind (no veth of a left network).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import unique
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.test_networks import ask, host_side, kill, logs, network, run, server


@pytest.fixture
def client(net_service: NetService) -> Iterator[httpx.Client]:
    with net_service.client() as c:
        yield c


def sleeper(client: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = client.post("/containers", json={"command": ["sleep", "300"], **spec})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def inside(client: httpx.Client, cid: str, command: str) -> str:
    got = client.post(
        f"/containers/{cid}/exec", params={"wait": "true"}, json={"command": ["sh", "-c", command]}
    )
    assert got.status_code == 201, got.text
    return client.get(f"/execs/{got.json()['id']}/logs").text


def connect(client: httpx.Client, cid: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/containers/{cid}/networks", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def veths(netns: Namespace) -> set[str]:
    """The host ends' names, and their alternative names (a pooled child's
    end answers to the container's veth name as one, plumbing.py)."""
    shown = netns.ip("-o", "link", "show", "type", "veth")
    names = set()
    for line in shown.splitlines():
        names.add(line.split(": ")[1].split("@")[0])
        words = line.split()
        names.update(words[i + 1] for i, word in enumerate(words[:-1]) if word == "altname")
    return names


def wait_gone(netns: Namespace, container_id: str) -> None:
    """Until no host end of the container's veths is left (the kernel drops
    them with its namespace, asynchronously)."""
    deadline = time.monotonic() + 10
    while any(v.startswith("veth" + container_id[:9]) for v in veths(netns)):
        assert time.monotonic() < deadline, veths(netns)
        time.sleep(0.05)


def test_a_running_container_joins_a_second_network_and_leaves_it(
    client: httpx.Client, netns: Namespace
) -> None:
    first = network(client, subnet="10.81.0.0/24")
    second = network(client, subnet="10.82.0.0/24")
    box = server(client, network=first["name"], name=unique("box"))
    joined = connect(
        client,
        box["id"],
        network=second["name"],
        aliases=["store"],
        ipv4_address="10.82.0.50",
        mac_address="02:00:00:00:82:50",
    )
    assert [(n["network"], n["interface"]) for n in joined["networks"]] == [
        (first["name"], "eth0"),
        (second["name"], "eth1"),
    ]
    assert joined["networks"][1]["ip_address"] == "10.82.0.50"
    shown = inside(client, box["id"], "ip -o -4 addr show eth1; cat /sys/class/net/eth1/address")
    assert "inet 10.82.0.50/24" in shown and "02:00:00:00:82:50" in shown
    hosts = inside(client, box["id"], "cat /etc/hosts")
    assert "10.81.0.2\t" in hosts and "10.82.0.50\t" in hosts
    # Reached on the second network by address, alias and name; still on the first.
    assert ask(client, second["name"], "10.82.0.50", 8000) == "echo:hi"
    assert ask(client, second["name"], "store", 8000) == "echo:hi"
    assert ask(client, second["name"], box["name"], 8000) == "echo:hi"
    assert ask(client, first["name"], box["name"], 8000) == "echo:hi"
    listed = client.get(f"/networks/{second['name']}").json()["containers"]
    assert [(c["id"], c["ip_address"]) for c in listed] == [(box["id"], "10.82.0.50")]
    host_end = "veth" + box["id"][:9] + "x1"
    assert host_end in veths(netns)

    twice = client.post(f"/containers/{box['id']}/networks", json={"network": second["name"]})
    assert twice.status_code == 409 and "already connected" in twice.json()["detail"]

    gone = client.delete(f"/containers/{box['id']}/networks/{second['name']}")
    assert gone.status_code == 204, gone.text
    assert "eth1" not in inside(client, box["id"], "ls /sys/class/net")
    assert host_end not in veths(netns)
    assert "10.82.0.50" not in inside(client, box["id"], "cat /etc/hosts")
    assert client.get(f"/networks/{second['name']}").json()["containers"] == []
    assert ask(client, second["name"], "store", 8000).startswith("failed")
    assert ask(client, first["name"], box["name"], 8000) == "echo:hi"
    again = client.delete(f"/containers/{box['id']}/networks/{second['name']}")
    assert again.status_code == 409 and "not connected" in again.json()["detail"]
    forced = client.delete(
        f"/containers/{box['id']}/networks/{second['name']}", params={"force": "true"}
    )
    assert forced.status_code == 409  # force or not, as Docker's
    # The static address is free again.
    other = run(client, ["true"], network=second["name"], endpoint={"ipv4_address": "10.82.0.50"})
    assert other["exit_code"] == 0, other
    kill(client, box["id"])


def test_the_first_network_is_left_and_joined_again(client: httpx.Client) -> None:
    net = network(client, subnet="10.83.0.0/24", ip_range="10.83.0.128/25")
    box = sleeper(client, network=net["name"])
    # The range's first address, as Docker's allocator (a host of the subnet).
    assert box["network"]["ip_address"] == "10.83.0.128"
    gone = client.delete(f"/containers/{box['id']}/networks/{net['name']}")
    assert gone.status_code == 204, gone.text
    assert inside(client, box["id"], "ls /sys/class/net").split() == ["lo"]
    shown = client.get(f"/containers/{box['id']}").json()
    assert shown["networks"] == [] and shown["network"]["ip_address"] == ""
    back = connect(client, box["id"], network=net["name"], ipv4_address="10.83.0.24")
    assert [(n["interface"], n["ip_address"]) for n in back["networks"]] == [("eth0", "10.83.0.24")]
    routes = inside(client, box["id"], "ip route")
    assert "default via 10.83.0.1 dev eth0" in routes, routes
    kill(client, box["id"])


def test_a_created_container_gets_its_networks_when_started(client: httpx.Client) -> None:
    """Docker's create with two endpoints: the second is connected to the
    created (not yet started) container, and both are up when it runs."""
    first = network(client, subnet="10.84.0.0/24")
    second = network(client, subnet="10.85.0.0/24")
    endpoints = {first["name"]: {}, second["name"]: {"Aliases": ["two"]}}
    made = client.post(
        "/v1.47/containers/create",
        json={
            "Image": "host",
            "Cmd": ["sleep", "300"],
            "HostConfig": {"NetworkMode": first["name"]},
            "NetworkingConfig": {"EndpointsConfig": endpoints},
        },
    )
    assert made.status_code == 201, made.text
    cid = made.json()["Id"]
    networks = client.get(f"/v1.47/containers/{cid}/json").json()["NetworkSettings"]["Networks"]
    assert sorted(networks) == sorted([first["name"], second["name"]])
    assert networks[second["name"]]["Aliases"] == ["two", cid[:12]]
    assert client.post(f"/v1.47/containers/{cid}/start").status_code == 204
    shown = inside(client, cid, "ip -o -4 addr show")
    assert "10.84.0.2/24" in shown and "10.85.0.2/24" in shown, shown
    kill(client, cid)
    # At its exit both addresses are free again, and nothing of it is left.
    assert client.get(f"/networks/{second['name']}").json()["containers"] == []


def test_an_ip_range_and_auxiliary_addresses_bound_what_is_handed_out(
    client: httpx.Client,
) -> None:
    net = network(
        client,
        subnet="10.86.0.0/24",
        ip_range="10.86.0.0/30",
        aux_addresses={"router": "10.86.0.2"},
    )
    shown = client.get(f"/networks/{net['name']}").json()
    assert (shown["ip_range"], shown["aux_addresses"]) == ("10.86.0.0/30", {"router": "10.86.0.2"})
    box = sleeper(client, network=net["name"])
    assert box["network"]["ip_address"] == "10.86.0.3"  # .1 the gateway, .2 reserved
    full = client.post("/containers", json={"command": ["true"], "network": net["name"]})
    assert full.status_code == 409 and "10.86.0.0/30" in full.json()["detail"]
    for address, status, says in [
        ("10.86.0.2", 409, "auxiliary"),
        ("10.9.0.2", 422, "ipv4_address"),  # outside the subnet
        ("10.86.0.3", 409, "10.86.0.3"),  # the box's
    ]:
        body = {"command": ["true"], "network": net["name"], "endpoint": {"ipv4_address": address}}
        refused = client.post("/containers", json=body)
        assert refused.status_code == status and says in refused.text, refused.text
    kill(client, box["id"])


def test_links_and_link_local_addresses(client: httpx.Client) -> None:
    net = network(client, subnet="10.87.0.0/24")
    upstream = server(client, network=net["name"], name=unique("up"))
    done = run(
        client,
        ["sh", "-c", "getent hosts db; ip -o -4 addr show eth0"],
        network=net["name"],
        endpoint={"links": [f"{upstream['name']}:db"], "link_local_ips": ["169.254.8.8"]},
    )
    out = logs(client, done["id"])
    assert upstream["network"]["ip_address"] in out and "169.254.8.8/16" in out, out
    # On the built-in bridge a link is a line of /etc/hosts.
    plain = server(client, network="bridge", name=unique("plain"))
    linked = run(
        client,
        ["cat", "/etc/hosts"],
        network="bridge",
        endpoint={"links": [f"{plain['name']}:cache"]},
    )
    hosts = logs(client, linked["id"])
    assert f"{plain['network']['ip_address']}\tcache {plain['name']}" in hosts, hosts
    kill(client, upstream["id"], plain["id"])


def test_a_restart_keeps_the_connections_and_an_exit_frees_them(
    own_net_service: NetService, netns: Namespace
) -> None:
    svc = own_net_service
    with svc.client() as c:
        first = network(c, subnet="10.88.0.0/24")
        second = network(c, subnet="10.89.0.0/24")
        box = server(c, network=first["name"], name=unique("kept"))
        connect(c, box["id"], network=second["name"], aliases=["kept-alias"])
    svc.stop()
    svc.start()
    with svc.client() as c:
        assert ask(c, second["name"], "kept-alias", 8000) == "echo:hi"
        kill(c, box["id"])
        wait_gone(netns, box["id"])
        assert c.get(f"/networks/{second['name']}").json()["containers"] == []
        # Its address on the second network is free again.
        again = server(c, network=second["name"])
        assert again["network"]["ip_address"] == "10.89.0.2"
        kill(c, again["id"])


def test_a_stopped_container_is_started_again_on_every_network(
    client: httpx.Client, netns: Namespace
) -> None:
    first = network(client, subnet="10.90.0.0/24")
    second = network(client, subnet="10.91.0.0/24")
    box = server(
        client, network=first["name"], name=unique("again"), ports=[{"container_port": 8000}]
    )
    port = box["network"]["ports"][0]["host_port"]
    connect(client, box["id"], network=second["name"], ipv4_address="10.91.0.9")
    kill(client, box["id"])
    assert ask(client, second["name"], box["name"], 8000).startswith("failed")
    started = client.post(f"/containers/{box['id']}/restart")
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 20
    while logs(client, box["id"]).count("ready") < 2:
        assert time.monotonic() < deadline, logs(client, box["id"])
        time.sleep(0.05)
    shown = inside(client, box["id"], "ip -o -4 addr show")
    assert "10.90.0.2/24" in shown and "10.91.0.9/24" in shown, shown
    # Its names and its published port come back with it.
    assert ask(client, second["name"], box["name"], 8000) == "echo:hi"
    assert host_side(netns, "127.0.0.1", port) == "echo:hi"
    assert ask(client, first["name"], box["name"], 8000) == "echo:hi"
    kill(client, box["id"])


def test_a_crash_of_api_and_launcher_leaves_no_veth_of_a_connected_network(
    own_net_service: NetService, netns: Namespace
) -> None:
    svc = own_net_service
    with svc.client() as c:
        first = network(c, subnet="10.92.0.0/24")
        second = network(c, subnet="10.93.0.0/24")
        box = sleeper(c, network=first["name"])
        connect(c, box["id"], network=second["name"])
    assert {"veth" + box["id"][:11], "veth" + box["id"][:9] + "x1"} <= veths(netns)
    svc.kill_all()
    svc.start()
    with svc.client() as c:
        assert c.get(f"/containers/{box['id']}").json()["status"] == "exited"
        wait_gone(netns, box["id"])
        # Both addresses are free again.
        again = connect(c, sleeper(c, network=first["name"])["id"], network=second["name"])
        assert [n["ip_address"] for n in again["networks"]] == ["10.92.0.2", "10.93.0.2"]
        kill(c, again["id"])


def test_an_address_taken_while_its_owner_was_stopped(client: httpx.Client) -> None:
    """Free for others while exited (as Docker's): the owner starts again
    with another, unless it was static (then its start is a 409)."""
    net = network(client, subnet="10.94.0.0/24")
    owner = sleeper(client, network=net["name"])
    static = sleeper(client, network=net["name"], endpoint={"ipv4_address": "10.94.0.50"})
    kill(client, owner["id"], static["id"])
    taker = sleeper(client, network=net["name"])
    assert taker["network"]["ip_address"] == owner["network"]["ip_address"] == "10.94.0.2"
    squatter = sleeper(client, network=net["name"], endpoint={"ipv4_address": "10.94.0.50"})
    again = client.post(f"/containers/{owner['id']}/restart")
    assert again.status_code == 200, again.text
    assert again.json()["network"]["ip_address"] == "10.94.0.3"
    assert "10.94.0.3/24" in inside(client, owner["id"], "ip -o -4 addr show eth0")
    refused = client.post(f"/containers/{static['id']}/restart")
    assert refused.status_code == 409 and "10.94.0.50" in refused.json()["detail"]
    assert client.get(f"/containers/{static['id']}").json()["status"] == "exited"
    kill(client, owner["id"], taker["id"], squatter["id"])
