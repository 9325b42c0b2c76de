"""A bridge container's /etc files on the service's tmpfs
(runtime/network/etcdir.py) over HTTP, with real containers, in a service
inside a network namespace of the test's own: bound from the tmpfs, gone
with the container, kept across an API restart (and still rewritten by a
connect then), and unmounted by nothing but the test's clean-up."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.layout import Layout
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.test_connections import connect, inside, sleeper
from tests.e2e.test_networks import kill, logs, network, run


def test_the_files_are_on_a_tmpfs_and_go_with_the_container(own_net_service: NetService) -> None:
    etc_files = Layout.of(str(own_net_service.state_dir)).etc_files
    with own_net_service.client() as c:
        net = network(c, subnet="10.91.0.0/24")
        done = run(
            c,
            ["grep", "-E", " /etc/(hosts|resolv.conf|hostname) ", "/proc/self/mountinfo"],
            network=net["name"],
        )
        lines = logs(c, done["id"]).splitlines()
        assert len(lines) == 3, lines
        assert all(" - tmpfs " in line and " ro," in line for line in lines), lines
        assert os.path.ismount(etc_files)
        assert os.listdir(os.path.join(etc_files, done["id"])) != []
        assert c.delete(f"/containers/{done['id']}").status_code == 204
        assert done["id"] not in os.listdir(etc_files)


def test_an_api_restart_keeps_the_files_and_a_connect_rewrites_them(
    own_net_service: NetService,
) -> None:
    with own_net_service.client() as c:
        first = network(c, subnet="10.92.0.0/24")
        second = network(c, subnet="10.93.0.0/24")
        box = sleeper(c, network=first["name"])
    own_net_service.stop()
    own_net_service.start()  # the tmpfs is mounted already: used as it is
    with own_net_service.client() as c:
        assert "10.92.0.2" in inside(c, box["id"], "cat /etc/hosts")
        connect(c, box["id"], network=second["name"])
        hosts = inside(c, box["id"], "cat /etc/hosts")
        assert "10.92.0.2" in hosts and "10.93.0.2" in hosts, hosts
        kill(c, box["id"])
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert mounts.count(Layout.of(str(own_net_service.state_dir)).etc_files) == 1


def test_clean_up_unmounts_the_tmpfs(netns: Namespace, tmp_path: Path) -> None:
    svc = NetService(netns, tmp_path / "state")
    svc.start()
    try:
        with svc.client() as c:
            run(c, ["true"], network=network(c)["name"])
    finally:
        svc.close()
    assert not os.path.ismount(Layout.of(str(svc.state_dir)).etc_files)


def test_a_container_without_a_bridge_mounts_nothing(own_net_service: NetService) -> None:
    with own_net_service.client() as c:
        run(c, ["true"])
    assert not os.path.ismount(Layout.of(str(own_net_service.state_dir)).etc_files)
