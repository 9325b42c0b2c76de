"""runtime/network/netlink.py and ipam.py against the kernel, as root.

Network safety: each test forks a child that unshares a network namespace of
its own and does everything there; the "container" is a grandchild that
unshares another one.  Nothing touches the host's namespace, and traffic only
goes between the two.  ``ip -j`` runs inside them to cross-check what the
module did.  A failure inside the child comes back as its traceback.
"""

from __future__ import annotations

import errno
import io
import json
import os
import select
import signal
import socket
import subprocess
import time
import traceback
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import pytest

from runtime import libc
from runtime.namespaces import Namespace
from runtime.network import ipam
from runtime.network import netlink as nl
from tests.e2e.netns import in_own_netns

PR_SET_PDEATHSIG = 1
ECHO_PORT = 7007


def ip_json(*args: str) -> Any:
    """``ip -j ARGS`` in the caller's (test) namespace."""
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


class Container:
    """A grandchild in a network namespace of its own, as a container would be:
    it waits for its address, configures its side itself (what the real child
    will do), answers UDP echoes, and exits when its command pipe closes."""

    def __init__(self) -> None:
        ready_r, self._ready_w = os.pipe()
        self._cmd_r, cmd_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            status = 1
            try:
                os.close(ready_r)
                os.close(cmd_w)
                status = self._run()
            except BaseException:
                os.write(self._ready_w, json.dumps({"error": traceback.format_exc()}).encode())
            finally:
                os._exit(status)
        os.close(self._ready_w)
        os.close(self._cmd_r)
        self._ready = os.fdopen(ready_r, "rb", buffering=0)
        self._cmd = os.fdopen(cmd_w, "wb", buffering=0)
        self._expect("unshared")
        self.netns_fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def _expect(self, what: str) -> dict[str, Any]:
        ready, _, _ = select.select([self._ready], [], [], 10)
        assert ready, f"the container did not report {what!r} in time"
        reply: dict[str, Any] = json.loads(self._ready.readline())
        assert "error" not in reply, reply["error"]
        assert reply["step"] == what, reply
        return reply

    def configure(self, interface: str, gateway: str) -> dict[str, Any]:
        self._cmd.write(json.dumps({"interface": interface, "gateway": gateway}).encode() + b"\n")
        return self._expect("configured")

    def kill(self) -> None:
        self._cmd.close()
        os.close(self.netns_fd)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self._ready.close()

    # -- in the grandchild ---------------------------------------------------

    def _say(self, step: str, **extra: Any) -> None:
        os.write(self._ready_w, json.dumps({"step": step, **extra}).encode() + b"\n")

    def _run(self) -> int:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.unshare(Namespace.NEWNET)
        self._say("unshared")
        with os.fdopen(self._cmd_r, "rb", buffering=0) as cmd:
            order = json.loads(cmd.readline())
            interface = IPv4Interface(order["interface"])
            # What the child will do, on a socket it opens in its own namespace.
            start = time.perf_counter()
            with nl.Netlink() as ours:
                eth0 = nl.get_link(ours, "eth0")
                nl.add_address(ours, eth0.index, interface)
                nl.set_up(ours, "lo")
                nl.set_up(ours, eth0.index)
                nl.add_default_route(ours, order["gateway"])
            elapsed = time.perf_counter() - start
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo:
                echo.bind((str(interface.ip), ECHO_PORT))
                self._say(
                    "configured",
                    seconds=elapsed,
                    link=ip_json("link", "show", "eth0"),
                    addr=ip_json("addr", "show", "eth0"),
                    route=ip_json("route"),
                )
                while True:
                    watched: list[socket.socket | io.FileIO] = [echo, cmd]
                    ready, _, _ = select.select(watched, [], [])
                    if cmd in ready:  # EOF: the test is done with us
                        return 0
                    data, peer = echo.recvfrom(2048)
                    echo.sendto(data[::-1], peer)


def wait_gone(sock: nl.Netlink, name: str, timeout: float = 10.0) -> float:
    """Seconds until the link ``name`` is gone (netns teardown runs in a workqueue)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            nl.get_link(sock, name)
        except OSError as err:
            assert err.errno == errno.ENODEV, err
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"{name} still exists {timeout} s after its peer's namespace died")


def test_a_veth_into_a_containers_namespace_carries_traffic_and_dies_with_it() -> None:
    def body() -> dict[str, Any]:
        subnet = ipam.Subnet.of("172.30.0.0/16")
        pool = ipam.AddressPool(subnet)
        address = pool.allocate()
        mac = ipam.mac_for(address)
        with nl.Netlink() as host:
            bridge = nl.create_bridge(host, "mdbr0", mtu=1400)
            nl.add_address(host, bridge.index, subnet.bridge_interface)
            container = Container()
            try:
                nl.create_veth(
                    host,
                    "vethmd0",
                    peer_name="eth0",
                    peer_netns_fd=container.netns_fd,
                    peer_mac=mac,
                    mtu=bridge.mtu,
                    master=bridge.index,
                )
                host_end = nl.get_link(host, "vethmd0")
                assert host_end.master == bridge.index and host_end.up
                assert host_end.mtu == 1400 and host_end.kind == "veth"
                # The peer was born in the container's namespace, not here.
                with pytest.raises(OSError) as info:
                    nl.get_link(host, "eth0")
                assert info.value.errno == errno.ENODEV
                # open_in_namespace: a socket on the container's side, from here.
                ours = os.stat("/proc/thread-self/ns/net").st_ino
                with nl.open_in_namespace(container.netns_fd) as theirs:
                    assert os.stat("/proc/thread-self/ns/net").st_ino == ours  # back home
                    peer = nl.get_link(theirs, "eth0")
                assert (peer.mac, peer.mtu, peer.up) == (mac, 1400, False)
                assert peer.index == host_end.link

                seen = container.configure(str(subnet.interface(address)), str(subnet.gateway))
                (link,) = seen["link"]
                assert (link["address"], link["mtu"], link["operstate"]) == (mac, 1400, "UP")
                (addr,) = seen["addr"]
                inet = [a for a in addr["addr_info"] if a["family"] == "inet"]
                assert [(a["local"], a["prefixlen"], a.get("broadcast")) for a in inet] == [
                    ("172.30.0.2", 16, "172.30.255.255")
                ]
                default = [r for r in seen["route"] if r["dst"] == "default"]
                assert default == [
                    {"dst": "default", "gateway": "172.30.0.1", "dev": "eth0", "flags": []}
                ]

                # Real traffic: bridge gateway → container and back.
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.bind((str(subnet.gateway), 0))
                    client.settimeout(5)
                    client.sendto(b"hello", (str(address), ECHO_PORT))
                    data, source = client.recvfrom(2048)
                assert (data, source) == (b"olleh", (str(address), ECHO_PORT))
                # The MAC on the wire is the derived one.
                neigh = ip_json("neigh", "show", str(address))
                assert [n["lladdr"] for n in neigh] == [mac]
                # What `ip` sees on this side: the bridge's address, the port.
                (br,) = ip_json("addr", "show", "mdbr0")
                assert [a["local"] for a in br["addr_info"] if a["family"] == "inet"] == [
                    "172.30.0.1"
                ]
                (port,) = ip_json("link", "show", "master", "mdbr0")
                assert port["ifname"] == "vethmd0"
            finally:
                container.kill()
            # The container's namespace is gone: the kernel deleted the pair.
            gone_after = wait_gone(host, "vethmd0")
            assert ip_json("link", "show", "master", "mdbr0") == []
            return {"gone_after": gone_after, "configure_seconds": seen["seconds"]}

    result = in_own_netns(body)
    assert result["gone_after"] < 10


def test_the_launchers_way_echo_one_queue_and_eth0_configured_from_outside() -> None:
    """What runtime/launcher/plumbing.py does: the echoed host end names the
    peer's index, each end has one queue, and eth0 is addressed, brought up
    and routed by one batch on a socket opened in the container's namespace."""

    def body() -> dict[str, Any]:
        with nl.Netlink() as host:
            bridge = nl.create_bridge(host, "mdbr2")
            nl.add_address(host, bridge.index, "172.29.0.1/16")
            container = Container()
            try:
                echoed = nl.create_veth(
                    host,
                    "vethmd2",
                    peer_name="eth0",
                    peer_netns_fd=container.netns_fd,
                    peer_mac="02:42:ac:1d:00:02",
                    mtu=bridge.mtu,
                    master=bridge.index,
                )
                assert echoed is not None and echoed.name == "vethmd2"  # Linux >= 6.2
                (details,) = ip_json("-d", "link", "show", "vethmd2")
                assert (details["num_tx_queues"], details["num_rx_queues"]) == (1, 1)
                with nl.open_in_namespace(container.netns_fd) as theirs:
                    assert nl.get_link(theirs, "eth0").index == echoed.link
                    nl.configure_link(theirs, echoed.link, "172.29.0.2/16", "172.29.0.1")
                    peer = nl.get_link(theirs, echoed.link)
                    (default,) = [r for r in nl.routes(theirs) if r.dst.prefixlen == 0]
                    # Again: the address exists, so the batch fails on it first.
                    with pytest.raises(FileExistsError, match="add address 172.29.0.2/16"):
                        nl.configure_link(theirs, echoed.link, "172.29.0.2/16", "172.29.0.1")
                assert peer.up and (str(default.gateway), default.oif) == ("172.29.0.1", peer.index)
                nsenter = ["nsenter", f"--net=/proc/{container.pid}/ns/net", "ip", "-j", "-d"]
                out = subprocess.run(
                    [*nsenter, "link", "show", "eth0"], check=True, capture_output=True, text=True
                )
                (inside,) = json.loads(out.stdout)
                assert (inside["num_tx_queues"], inside["num_rx_queues"]) == (1, 1)
                # Both ends up, neither with an IPv6 link-local address.
                out = subprocess.run(
                    [*nsenter, "addr", "show", "eth0"], check=True, capture_output=True, text=True
                )
                (eth0,) = json.loads(out.stdout)
                (host_end,) = ip_json("addr", "show", "vethmd2")
                for end in (eth0, host_end):
                    assert "LOWER_UP" in end["flags"], end
                    assert [a["family"] for a in end["addr_info"] if a["family"] == "inet6"] == []
                # (Traffic over such a pair: tests/e2e/test_networks.py, through
                # the launcher, and the test above.)
                return {"queues": (inside["num_tx_queues"], details["num_rx_queues"])}
            finally:
                container.kill()

    assert in_own_netns(body) == {"queues": [1, 1]}  # through JSON


def test_kernel_errors_name_the_operation_and_keep_the_errno() -> None:
    def body() -> None:
        with nl.Netlink() as host:
            bridge = nl.create_bridge(host, "mdbr1")
            assert bridge.kind == "bridge" and bridge.up and bridge.mtu == 1500
            with pytest.raises(FileExistsError, match="create bridge mdbr1: File exists"):
                nl.create_bridge(host, "mdbr1")
            with pytest.raises(OSError, match="delete link nosuch: No such device") as info:
                nl.delete_link(host, "nosuch")
            assert info.value.errno == errno.ENODEV
            # No address reaches the gateway yet: the route is refused.
            with pytest.raises(OSError, match="add default route via 10.1.0.1") as info:
                nl.add_default_route(host, "10.1.0.1")
            assert info.value.errno == errno.ENETUNREACH
            nl.add_address(host, bridge.index, "10.1.0.2/24")
            with pytest.raises(FileExistsError, match="add address 10.1.0.2/24 to link"):
                nl.add_address(host, bridge.index, "10.1.0.2/24")
            # A bad namespace fd for the peer.
            with pytest.raises(OSError, match=r"create veth v0 \(peer eth0\)") as info:
                nl.create_veth(host, "v0", peer_name="eth0", peer_netns_fd=os.open("/", 0))
            assert info.value.errno == errno.EINVAL
            nl.delete_link(host, "mdbr1")
            assert "mdbr1" not in {link.name for link in nl.links(host)}

    in_own_netns(body)


def test_a_new_subnet_skips_the_namespaces_routes_and_names_a_clash() -> None:
    def body() -> None:
        with nl.Netlink() as host:
            bridge = nl.create_bridge(host, "mdbr2")
            nl.add_address(host, bridge.index, "172.17.5.1/24")
            subprocess.run(["ip", "route", "add", "172.18.0.0/16", "via", "172.17.5.9"], check=True)
            taken = ipam.host_routes_taken(host)
            assert ipam.pick_subnet(taken) == IPv4Network("172.19.0.0/16")
            with pytest.raises(ipam.SubnetOverlap) as info:
                ipam.check_subnet(IPv4Network("172.17.0.0/16"), taken)
            assert str(info.value) == (
                "subnet 172.17.0.0/16 overlaps the host's route 172.17.5.0/24 dev mdbr2"
            )
            with pytest.raises(ipam.SubnetOverlap, match="172.18.0.0/16 via 172.17.5.9 dev mdbr2"):
                ipam.check_subnet(IPv4Network("172.18.128.0/17"), taken)

    in_own_netns(body)
