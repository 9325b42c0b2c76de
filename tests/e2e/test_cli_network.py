"""The mydocker CLI's networking against a service in the test's own
namespace: network create/ls/inspect/rm, run --network -p, port."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.e2e.conftest import ROOT
from tests.e2e.helpers import unique
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.test_networks import ECHO, host_side


def mydocker(
    service: NetService, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--host", str(service.uds), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def test_the_cli_makes_a_network_runs_on_it_and_shows_its_ports(
    net_service: NetService, netns: Namespace
) -> None:
    name = unique("net")
    network_id = mydocker(
        net_service, "network", "create", "--subnet", "10.55.0.0/24", name
    ).stdout.strip()
    listed = mydocker(net_service, "network", "ls").stdout
    assert name in listed and "10.55.0.0/24" in listed
    assert json.loads(mydocker(net_service, "network", "inspect", name).stdout)["id"] == network_id
    container = mydocker(
        net_service,
        "run",
        "-d",
        "--network",
        name,
        "-p",
        "127.0.0.1::8000",
        "-p",
        "8000/udp",
        "--",
        "python3",
        "-c",
        ECHO,
        "8000",
    ).stdout.strip()
    deadline = time.monotonic() + 20
    while "ready" not in mydocker(net_service, "logs", container).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = mydocker(net_service, "port", container).stdout.splitlines()
    assert [line.split(" -> ")[0] for line in lines] == ["8000/tcp", "8000/udp"]
    tcp = mydocker(net_service, "port", container, "8000").stdout.strip()
    assert host_side(netns, "127.0.0.1", int(tcp.rsplit(":", 1)[1])) == "echo:hi"
    busy = mydocker(net_service, "network", "rm", name, check=False)
    assert busy.returncode != 0 and "attached" in busy.stderr
    mydocker(net_service, "rm", "-f", container)
    assert mydocker(net_service, "network", "rm", name).stdout.strip() == name
    bad = mydocker(net_service, "run", "--network", "none", "-p", "80", "--", "true", check=False)
    assert bad.returncode == 125 and "ports" in bad.stderr


def test_the_cli_connects_and_disconnects_a_running_container(net_service: NetService) -> None:
    first, second = unique("net"), unique("net")
    mydocker(net_service, "network", "create", "--subnet", "10.56.0.0/24", first)
    mydocker(
        net_service,
        "network",
        "create",
        "--subnet",
        "10.57.0.0/24",
        "--ip-range",
        "10.57.0.64/26",
        "--aux-address",
        "router=10.57.0.64",
        second,
    )
    shown = json.loads(mydocker(net_service, "network", "inspect", second).stdout)
    assert (shown["ip_range"], shown["aux_addresses"]) == (
        "10.57.0.64/26",
        {"router": "10.57.0.64"},
    )
    box = mydocker(net_service, "run", "-d", "--network", first, "--", "sleep", "300").stdout
    box = box.strip()
    mydocker(net_service, "network", "connect", "--alias", "two", "--ip", "10.57.0.70", second, box)
    inside = mydocker(net_service, "exec", box, "--", "ip", "-o", "-4", "addr").stdout
    assert "10.56.0.2/24" in inside and "10.57.0.70/24" in inside
    again = mydocker(net_service, "network", "connect", second, box, check=False)
    assert again.returncode != 0 and "already connected" in again.stderr
    mydocker(net_service, "network", "disconnect", second, box)
    inside = mydocker(net_service, "exec", box, "--", "ip", "-o", "-4", "addr").stdout
    assert "10.57.0.70" not in inside
    mydocker(net_service, "kill", box)
