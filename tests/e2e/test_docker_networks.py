"""Docker's networking with the real ``docker`` CLI and docker-py, against a
service in a namespace of the test's own (tests/e2e/netservice.py), over its
unix socket: ``network create/ls/inspect/rm/prune``, ``run --network``,
``-p 127.0.0.1::PORT``, ``port``, and ``docker run`` on the default bridge."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.docker_helpers import docker_binary
from tests.e2e.helpers import unique
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.test_networks import CLIENT, ECHO, host_side


@pytest.fixture
def cli(net_service: NetService, tmp_path: Path) -> Any:
    env = {
        "DOCKER_HOST": f"unix://{net_service.uds}",
        "DOCKER_CONFIG": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [docker_binary(), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    return run


def wait_for(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_docker_cli_makes_networks_publishes_ports_and_resolves_names(
    cli: Any, netns: Namespace
) -> None:
    net, srv = unique("net"), unique("srv")
    cli("network", "create", "--subnet", "10.66.0.0/24", net)
    assert net in cli("network", "ls", "--format", "{{.Name}}").stdout.split()
    [shown] = json.loads(cli("network", "inspect", net).stdout)
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.66.0.0/24", "Gateway": "10.66.0.1"}]
    cli(
        "run",
        "-d",
        "--name",
        srv,
        "--network",
        net,
        "--network-alias",
        "echo",
        "-p",
        "127.0.0.1::8000",
        "-p",
        "127.0.0.1::8000/udp",
        "host",
        "python3",
        "-c",
        ECHO,
        "8000",
    )
    wait_for(lambda: "ready" in cli("logs", srv).stdout)
    tcp = cli("port", srv, "8000/tcp").stdout.strip()
    udp = cli("port", srv, "8000/udp").stdout.strip()
    assert tcp.startswith("127.0.0.1:") and udp.startswith("127.0.0.1:")
    assert host_side(netns, "127.0.0.1", int(tcp.rsplit(":", 1)[1])) == "echo:hi"
    assert host_side(netns, "127.0.0.1", int(udp.rsplit(":", 1)[1]), "udp") == "udp:hi"
    inspected = json.loads(cli("inspect", srv).stdout)[0]["NetworkSettings"]
    assert inspected["Networks"][net]["IPAddress"] == "10.66.0.2"
    for name in (srv, "echo"):
        out = cli(
            "run", "--rm", "--network", net, "host", "python3", "-c", CLIENT, name, "8000", "tcp"
        )
        assert out.stdout.strip() == "echo:hi"
    busy = cli("network", "rm", net, check=False)
    assert busy.returncode != 0 and "attached" in busy.stderr
    cli("rm", "-f", srv)
    wait_for(lambda: cli("network", "rm", net, check=False).returncode == 0)
    assert net not in cli("network", "ls", "--format", "{{.Name}}").stdout.split()


def test_docker_run_without_network_is_on_the_default_bridge(cli: Any) -> None:
    out = cli("run", "--rm", "host", "sh", "-c", "ip -o -4 addr show eth0; ip route").stdout
    assert "eth0" in out and "default via" in out
    alone = cli("run", "--rm", "--network", "none", "host", "ls", "/sys/class/net").stdout
    assert alone.split() == ["lo"]


def test_docker_py_networks_and_ports(net_service: NetService, netns: Namespace) -> None:
    client = docker.DockerClient(base_url=f"unix://{net_service.uds}", version="1.47")
    try:
        network = client.networks.create(unique("pynet"), driver="bridge", labels={"by": "py"})
        container = client.containers.run(
            "host",
            ["python3", "-c", ECHO, "8000"],
            network=network.name,
            ports={"8000/tcp": None},
            detach=True,
        )
        wait_for(lambda: b"ready" in container.logs())
        container.reload()
        [binding] = container.ports["8000/tcp"]
        assert binding["HostIp"] == "127.0.0.1"
        assert client.api.port(container.id, 8000) == [binding]
        assert host_side(netns, "127.0.0.1", int(binding["HostPort"])) == "echo:hi"
        network.reload()
        assert [c.id for c in network.containers] == [container.id]
        assert client.networks.list(filters={"label": "by=py"})[0].id == network.id
        with pytest.raises(docker.errors.APIError) as refused:
            network.remove()
        assert refused.value.status_code == 409
        container.remove(force=True)
        wait_for(lambda: not client.networks.get(network.id).containers)
        assert network.name in client.networks.prune()["NetworksDeleted"]
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(network.id)
    finally:
        client.close()


def test_docker_py_connects_disconnects_and_honours_endpoint_settings(
    net_service: NetService,
) -> None:
    """What docker-py's network tests do: a space in a name, IPAM's range and
    auxiliary addresses, connect/disconnect of a running container (twice
    is an error, force or not), a static address, a MAC, driver options,
    link-local addresses and links resolved by the DNS."""
    client = docker.DockerClient(base_url=f"unix://{net_service.uds}", version="1.47")
    api = client.api
    try:
        spaced = client.networks.create(unique("test 01"))
        assert client.networks.get(spaced.name).id == spaced.id
        spaced.remove()
        ipam = docker.types.IPAMConfig(
            pool_configs=[
                docker.types.IPAMPool(
                    subnet="10.71.0.0/16",
                    iprange="10.71.5.0/24",
                    gateway="10.71.5.254",
                    aux_addresses={"a": "10.71.1.5"},
                )
            ]
        )
        net = client.networks.create(unique("pynet"), ipam=ipam)
        assert net.attrs["IPAM"]["Config"] == [
            {
                "Subnet": "10.71.0.0/16",
                "IPRange": "10.71.5.0/24",
                "Gateway": "10.71.5.254",
                "AuxiliaryAddresses": {"a": "10.71.1.5"},
            }
        ]
        box = client.containers.run("host", ["sleep", "300"], detach=True)  # default: bridge
        net.connect(box, aliases=["foo"], ipv4_address="10.71.5.24")
        with pytest.raises(docker.errors.APIError):
            net.connect(box)
        box.reload()
        endpoint = box.attrs["NetworkSettings"]["Networks"][net.name]
        assert endpoint["IPAMConfig"]["IPv4Address"] == "10.71.5.24"
        assert endpoint["Aliases"] == ["foo", box.id[:12]]
        assert sorted(box.attrs["NetworkSettings"]["Networks"]) == sorted(["bridge", net.name])
        assert "10.71.5.24/16" in box.exec_run(["ip", "-o", "-4", "addr"]).output.decode()
        net.disconnect(box, force=True)
        with pytest.raises(docker.errors.APIError):
            net.disconnect(box, force=True)
        net.reload()
        assert net.containers == []
        created = api.create_container("host", ["sleep", "300"])
        api.connect_container_to_network(created, net.name, mac_address="02:42:ac:11:00:02")
        shown = api.inspect_container(created)["NetworkSettings"]["Networks"][net.name]
        assert shown["MacAddress"] == "02:42:ac:11:00:02"
        api.remove_container(created, force=True)
        linker = api.create_container(
            "host",
            ["sleep", "300"],
            host_config=api.create_host_config(network_mode=net.name),
            networking_config=api.create_networking_config(
                {
                    net.name: api.create_endpoint_config(
                        links=[("upstream-" + net.name[-6:], "bar")],
                        link_local_ips=["169.254.8.8"],
                        driver_opt={"k": "v"},
                    )
                }
            ),
        )
        api.start(linker)
        shown = api.inspect_container(linker)["NetworkSettings"]["Networks"][net.name]
        assert shown["Links"] == ["upstream-" + net.name[-6:] + ":bar"]
        assert shown["IPAMConfig"]["LinkLocalIPs"] == ["169.254.8.8"]
        assert shown["DriverOpts"] == {"k": "v"}
        upstream = client.containers.run(
            "host",
            ["sleep", "300"],
            name="upstream-" + net.name[-6:],
            network=net.name,
            detach=True,
        )
        upstream.reload()
        address = upstream.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
        found = api.exec_start(api.exec_create(linker, ["getent", "hosts", "bar"])).decode()
        assert address in found, found
        for each in (box.id, linker["Id"], upstream.id):
            api.remove_container(each, force=True)
        net.remove()
    finally:
        client.close()


def test_docker_py_diff_on_the_default_bridge_shows_only_the_users_change(
    net_service: NetService,
) -> None:
    """The /etc files bound over a bridge container's are no change of its
    own (docker-py's ``test_diff``)."""
    client = docker.DockerClient(base_url=f"unix://{net_service.uds}", version="1.47")
    try:
        container = client.containers.run("busybox", ["touch", "/test"], detach=True)
        container.wait()
        assert container.diff() == [{"Path": "/test", "Kind": 1}]
        container.remove()
    finally:
        client.close()


def test_network_events_tell_create_connect_disconnect_and_destroy(
    net_service: NetService,
) -> None:
    """Docker's network events: the network is the actor, the container that
    joined or left an attribute; ``type=network`` selects them, ``type=volume``
    does not (it selects volume events only)."""
    client = docker.DockerClient(base_url=f"unix://{net_service.uds}", version="1.47")
    try:
        since = time.time()
        network = client.networks.create(unique("evnet"), driver="bridge")
        container = client.containers.run("host", ["true"], network=network.name, detach=True)
        assert container.wait(timeout=30)["StatusCode"] == 0
        wait_for(lambda: not client.networks.get(network.id).containers)
        container.remove()
        network.remove()
        until = time.time() + 1
        seen = [
            (e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"])
            for e in client.events(
                since=since, until=until, decode=True, filters={"type": "network"}
            )
        ]
        volumes = list(
            client.events(since=since, until=until, decode=True, filters={"type": "volume"})
        )
    finally:
        client.close()
    assert [action for action, _, _ in seen] == ["create", "connect", "disconnect", "destroy"]
    assert {actor for _, actor, _ in seen} == {network.id}
    for action, _, attributes in seen:
        assert attributes["name"] == network.name and attributes["type"] == "bridge"
        if action in ("connect", "disconnect"):
            assert attributes["container"] == container.id
    assert volumes == []
