"""Network namespaces of a test's own, for the firewall and DNS tests and benches.

    in_own_netns(body)   run ``body`` in a forked child that unshares a network
                         namespace ("the host" of the test, lo up); its JSON
                         result back, or its traceback as the test's failure
    Peer                 ``unshare --net python -m tests.e2e.netpeer``: a
                         "container" or an "outside" host, driven over pipes
    Peer.attach          a veth from the test's namespace to the peer's eth0
                         (netlink.create_veth), then the peer configures itself

Network safety: nothing here runs in the host's namespace; all traffic goes
between namespaces the test made.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from runtime import libc
from runtime.namespaces import Namespace
from runtime.network import ipam
from runtime.network import netlink as nl

ROOT = Path(__file__).resolve().parents[2]


def in_own_netns(body: Callable[[], Any], timeout: float = 60.0) -> Any:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_end)
            libc.unshare(Namespace.NEWNET)  # first of all: never the host's namespace
            with nl.Netlink() as sock:
                nl.set_up(sock, "lo")
            reply = {"result": body()}
            status = 0
        except BaseException:
            reply = {"error": traceback.format_exc()}
        finally:
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(reply))
            os._exit(status)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        pytest.fail("the test's namespace child gave no answer in time")
    reply = json.loads(b"".join(chunks))
    if "error" in reply:
        pytest.fail("in the test namespace:\n" + reply["error"], pytrace=False)
    return reply["result"]


def forwarding(on: bool = True) -> None:
    """net.ipv4.ip_forward of the caller's namespace (the test's own)."""
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n" if on else "0\n")


class Peer:
    def __init__(self, own_netns: bool = True) -> None:
        unshare = ["unshare", "--net"] if own_netns else []
        self.proc = subprocess.Popen(
            [*unshare, sys.executable, "-m", "tests.e2e.netpeer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self._read(30)["step"] == "unshared"
        # unshare(1) exec'd python in place: the pid is the peer's.
        self.netns_fd = os.open(f"/proc/{self.proc.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the peer did not answer in time"
        line = self.proc.stdout.readline()
        assert line, "the peer died"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, wait: float = 30, **order: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(order) + "\n")
        self.proc.stdin.flush()
        return self._read(wait)

    def attach(
        self,
        host: nl.Netlink,
        veth: str,
        interface: str,
        gateway: str | None,
        bridge: nl.Link | None = None,
    ) -> None:
        address = IPv4Interface(interface).ip
        nl.create_veth(
            host,
            veth,
            peer_name="eth0",
            peer_netns_fd=self.netns_fd,
            peer_mac=ipam.mac_for(address),
            mtu=bridge.mtu if bridge else None,
            master=bridge.index if bridge else None,
        )
        os.close(self.netns_fd)  # the pair must die with the peer
        self.netns_fd = -1
        reply = self.ask(configure={"interface": interface, "gateway": gateway})
        assert reply == {"step": "configured"}, reply

    def connect(self, protocol: str, ip: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
        return self.ask(connect=[protocol, ip, port], timeout=timeout)

    def close(self) -> None:
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
