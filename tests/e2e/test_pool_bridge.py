"""Bridge launches served by the warm pool (runtime/launcher/pool.py: the
bridge template; runtime/launcher/plumbing.py: ``park`` and ``plug_parked``)
over HTTP, with real containers, in a service inside a network namespace of
the test's own (tests/e2e/netservice.py).

The first bridge launch misses and adds a bridge template; its children get
a veth at the fill, whose host end waits on the last launch's bridge without
carrier (its bridge port disabled) until a claim.  A launch that claims
one gets the same address, MAC, route, /etc files, name resolution, reach
and published ports as a cold one; a ``none`` launch still sees only
``lo``; disconnecting finds the host end by the container's veth name; a
crash leaves no parked veth behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import unique
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.test_metrics import scrape
from tests.e2e.test_networks import ask, host_side, kill, logs, network, run, server

POOL = 2
HIT = 'mydocker_pool_claims_total{outcome="hit"}'
MISS = 'mydocker_pool_claims_total{outcome="miss"}'


@pytest.fixture
def service(netns: Namespace, tmp_path: Path) -> Iterator[NetService]:
    # The host image only: its children are the ones counted here.
    args = ["--pool-size", str(POOL), "--pool-images="]
    svc = NetService(netns, tmp_path / "state", extra_args=args)
    svc.start()
    try:
        yield svc
    finally:
        svc.close()


def wait_ready(client: httpx.Client, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while scrape(client).get('mydocker_pool_children{state="ready"}', 0) < count:
        assert time.monotonic() < deadline, "the pool did not fill"
        time.sleep(0.05)


def parked(netns: Namespace) -> list[str]:
    """Host ends of the netns that are still parked (never claimed).

    A claimed one keeps its ``mp`` name and gains the container's veth name
    as an alternative name; after its container exits it lingers until the
    kernel's namespace clean-up (a workqueue) drops it, so it is told apart
    by that altname, not by its name."""
    lines = netns.ip("-o", "link").splitlines()
    names = [line.split(":")[1].strip() for line in lines if " altname " not in line]
    return [n for n in names if n.startswith("mp")]


def test_a_pooled_bridge_launch_is_like_a_cold_one(service: NetService, netns: Namespace) -> None:
    with service.client() as c:
        wait_ready(c, POOL)
        net = network(c, subnet="10.79.0.0/24")
        before = scrape(c)
        srv = server(c, network=net["name"], name=unique("srv"))  # cold: adds the template
        after = scrape(c)
        assert after[MISS] == before[MISS] + 1 and after[HIT] == before[HIT]
        wait_ready(c, 2 * POOL)
        assert len(parked(netns)) == POOL

        name = unique("c")
        command = (
            "ip -o -4 addr show eth0; ip -o link show eth0; ip route; "
            "cat /etc/resolv.conf /etc/hosts /etc/hostname; "
            "(echo x >> /etc/hosts) 2>&1; ls /sys/class/net"
        )
        hits = scrape(c)[HIT]
        done = run(c, ["sh", "-c", command], network=net["name"], name=name)
        assert scrape(c)[HIT] == hits + 1
        assert done["exit_code"] == 0, done
        out = logs(c, done["id"])
        attached = done["network"]
        assert attached["ip_address"] == "10.79.0.3", attached
        assert "inet 10.79.0.3/24" in out, out
        assert attached["mac_address"] in out, out
        assert "default via 10.79.0.1 dev eth0" in out, out
        assert "nameserver 10.79.0.1" in out, out
        assert f"10.79.0.3\t{done['hostname']} {name}" in out, out
        assert "Read-only file system" in out, out  # the /etc trees are read-only
        assert " mtu 1500 " in out and "LOWER_UP" in out, out  # configured at the claim
        assert out.split()[-2:] == ["eth0", "lo"], out
        hits = scrape(c)[HIT]
        assert ask(c, net["name"], srv["name"], 8000) == "echo:hi"
        assert scrape(c)[HIT] == hits + 1

        # Refilled since: their host ends wait on that bridge already, up, but
        # without carrier (eth0 stays down until a claim), so the bridge
        # port is disabled: nothing reaches an unclaimed child.
        wait_ready(c, 2 * POOL)
        bridge = f"mdk-{net['id'][:11]}"
        waiting = [netns.ip("-d", "link", "show", n.split("@")[0]) for n in parked(netns)]
        on_bridge = [shown for shown in waiting if f"master {bridge}" in shown]
        assert on_bridge, waiting
        for shown in on_bridge:
            assert "NO-CARRIER" in shown and "bridge_slave state disabled" in shown, shown
        # One claimed from there is named (after its joined byte) before the
        # create answers.
        hits = scrape(c)[HIT]
        named = server(c, network=net["name"], name=unique("named"))
        assert scrape(c)[HIT] == hits + 1
        shown = netns.ip("link", "show", "veth" + named["id"][:11])
        assert f"master {bridge}" in shown and "state UP" in shown, shown
        kill(c, named["id"])
        wait_ready(c, 2 * POOL)
        published = server(c, network=net["name"], ports=[{"container_port": 8000}])
        port = published["network"]["ports"][0]["host_port"]
        assert host_side(netns, "127.0.0.1", port) == "echo:hi"
        # The host end is on the network's bridge and answers to the
        # container's veth name (an alternative name), as a cold one's.
        shown = netns.ip("link", "show", "veth" + published["id"][:11])
        assert f"master mdk-{net['id'][:11]}" in shown and "state UP" in shown, shown

        # A ``none`` launch is served by a child without a veth.
        hits = scrape(c)[HIT]
        alone = run(c, ["ls", "/sys/class/net"])
        assert scrape(c)[HIT] == hits + 1
        assert logs(c, alone["id"]).split() == ["lo"]

        # Disconnecting finds the host end by the container's veth name.
        gone = c.delete(f"/containers/{published['id']}/networks/{net['name']}")
        assert gone.status_code == 204, gone.text
        deadline = time.monotonic() + 10
        while "veth" + published["id"][:11] in netns.ip("-o", "link"):
            assert time.monotonic() < deadline, "the host end outlived the disconnect"
            time.sleep(0.05)
        kill(c, srv["id"], published["id"])

        # A claim for another network moves its parked end (waiting on the
        # first one's bridge) onto that network's bridge.
        wait_ready(c, 2 * POOL)
        other = network(c, subnet="10.78.0.0/24")
        hits = scrape(c)[HIT]
        moved = server(c, network=other["name"], name=unique("moved"))
        assert scrape(c)[HIT] == hits + 1
        shown = netns.ip("link", "show", "veth" + moved["id"][:11])
        assert f"master mdk-{other['id'][:11]}" in shown and "state UP" in shown, shown
        assert ask(c, other["name"], moved["name"], 8000) == "echo:hi"
        kill(c, moved["id"])


def test_a_crash_leaves_no_parked_veth(service: NetService, netns: Namespace) -> None:
    with service.client() as c:
        net = network(c)
        run(c, ["true"], network=net["name"])  # adds the bridge template
        wait_ready(c, 2 * POOL)
    assert len(parked(netns)) == POOL
    service.kill_all()
    deadline = time.monotonic() + 10
    while parked(netns):
        assert time.monotonic() < deadline, "parked veths outlived the launcher"
        time.sleep(0.05)
