"""A "container" (or an "outside" host) for the network e2e tests and benches.

Run as ``unshare --net python -m tests.e2e.netpeer``: it is born in a network
namespace of its own (or in its parent's, without unshare), says so, and
then obeys JSON lines on stdin, answering each with one JSON line on stdout:

    {"configure": {"interface": "10.88.1.2/24", "gateway": "10.88.1.1" | null}}
        eth0 (which the test made with netlink.create_veth) gets the address,
        lo and eth0 go up, the default route is set (what the real child
        will do), and a TCP and a UDP echo server listen on 0.0.0.0:ECHO_PORT;
        both answer ``<data> from <the client's address>``
    {"serve": port}
        only the echo servers, on 0.0.0.0:port (a peer started without its
        own namespace: the plain-loopback baseline of bench/firewall.py)
    {"connect": ["tcp" | "udp", "IP", port], "timeout": seconds}
        one exchange with an echo server: {"reply": "..."} or {"error": "timeout"
        | "refused" | ...}
    {"query": ["IP", port, "name"], "timeout": seconds}
        one DNS A query: {"rcode": n, "addresses": [...]} or {"error": ...}
    {"rtt": ["IP", port, count]}
        a TCP ping-pong of ``count`` round trips of 1 byte; {"seconds": [...]}

EOF on stdin ends it.  Traffic only goes where the test says: addresses in
the test's own namespaces.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time
from ipaddress import IPv4Interface
from typing import Any

from runtime.network import dns
from runtime.network import netlink as nl

ECHO_PORT = 7000


class _TCPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        suffix = f" from {self.client_address[0]}".encode()
        while data := sock.recv(65536):
            # One byte in, one byte out: the round-trip bench; anything else
            # says who called.
            sock.sendall(data if len(data) == 1 else data + suffix)


class _UDPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data + f" from {self.client_address[0]}".encode(), self.client_address)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_echo(host: str = "0.0.0.0", port: int = ECHO_PORT) -> None:
    for server in (
        _TCPServer((host, port), _TCPEcho),
        socketserver.UDPServer((host, port), _UDPEcho),
    ):
        threading.Thread(target=server.serve_forever, daemon=True).start()


def configure(interface: str, gateway: str | None) -> None:
    with nl.Netlink() as ours:
        eth0 = nl.get_link(ours, "eth0")
        nl.add_address(ours, eth0.index, IPv4Interface(interface))
        nl.set_up(ours, "lo")
        nl.set_up(ours, eth0.index)
        if gateway:
            nl.add_default_route(ours, gateway)


def exchange(protocol: str, ip: str, port: int, timeout: float) -> dict[str, Any]:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(timeout)
            sock.connect((ip, port))
            sock.send(b"hello")
            return {"reply": sock.recv(65536).decode()}
    except TimeoutError:
        return {"error": "timeout"}
    except ConnectionRefusedError:
        return {"error": "refused"}
    except OSError as err:
        return {"error": str(err)}


def query(ip: str, port: int, name: str, timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.send(dns.encode_query(0x1234, name))
        try:
            answer = dns.Message.parse(sock.recv(4096))
        except TimeoutError:
            return {"error": "timeout"}
        except ConnectionRefusedError:
            return {"error": "refused"}
    return {"rcode": answer.rcode, "addresses": [str(a) for a in answer.addresses()]}


def rtt(ip: str, port: int, count: int) -> list[float]:
    with socket.create_connection((ip, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seconds = []
        for _ in range(count):
            start = time.perf_counter()
            sock.send(b"x")
            sock.recv(1)
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    def say(**reply: Any) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    say(step="unshared")
    for line in sys.stdin:
        order = json.loads(line)
        try:
            if "configure" in order:
                configure(order["configure"]["interface"], order["configure"]["gateway"])
                serve_echo()
                say(step="configured")
            elif "serve" in order:
                serve_echo(port=order["serve"])
                say(step="serving")
            elif "connect" in order:
                say(**exchange(*order["connect"], timeout=order.get("timeout", 2.0)))
            elif "query" in order:
                say(**query(*order["query"], timeout=order.get("timeout", 2.0)))
            elif "rtt" in order:
                say(seconds=rtt(*order["rtt"]))
        except Exception as err:  # the test reads it; the peer goes on
            say(error=f"{type(err).__name__}: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
