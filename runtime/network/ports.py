"""Host ports held for published ports, by binding them.

    Binding       one held host port: protocol, host ip, port (the real one, after port 0)
    PortClash     Conflict naming the port someone else has
    PortHolder    reserve (all of a container's ports or none), release, restore

A published port is served by DNAT (firewall.py): nothing on the host
listens on it, so nothing stops another program from binding it and then
never seeing its traffic, or stealing the port of the next container.  The
holder binds a socket on host_ip:port for each published port and keeps it
while the container lives: TCP a SOCK_STREAM bound but never listening (no
connection is ever accepted on it; DNAT'ed packets never reach it), UDP a
bound SOCK_DGRAM.  Port 0 asks the kernel for an ephemeral port
(ip_local_port_range), read back with getsockname(2), which becomes the
published one.

Neither SO_REUSEADDR nor SO_REUSEPORT is set, on purpose: Linux lets two TCP
sockets that both set SO_REUSEADDR share an address while neither listens
(socket(7); net/ipv4/inet_connection_sock.c, inet_bind_conflict), so a
reserving socket with it set would let another program bind the port and
then listen.  Without it every later bind of that port, or of the wildcard
address with it, fails with EADDRINUSE.

Where it lives: in the launcher, the containers' parent.  The launcher
outlives restarts of the API process, as the containers do, so the ports
stay held across an API restart; and it learns of a container's death first
(its pidfd), which is when the ports are released.  The sockets are
close-on-exec (Python's default, PEP 446): a cloned child drops them at
execve.  After a restart of the launcher itself, ``restore`` binds again
the ports of the records that still run.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from runtime.errors import Conflict, InvalidArgument
from runtime.network.firewall import Protocol


@dataclass(frozen=True)
class Binding:
    protocol: Protocol
    host_ip: IPv4Address
    host_port: int

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}/{self.protocol}"


class PortClash(Conflict):
    def __init__(self, binding: Binding, detail: str = "") -> None:
        what = f"port {binding.host_port}/{binding.protocol} on {binding.host_ip}"
        super().__init__(f"{what} is already in use{detail}")
        self.binding = binding


class PortHolder:
    """Held sockets by owner (a container id).  A lock, though the launcher
    has one thread: the API process could hold them too, from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[Binding, socket.socket]]] = {}

    def reserve(self, owner: str, wanted: Iterable[Binding]) -> list[Binding]:
        """Bind every port in ``wanted`` for ``owner`` or none: the bindings
        as held (a port 0 replaced by the kernel's choice)."""
        taken: list[tuple[Binding, socket.socket]] = []
        try:
            for want in wanted:
                taken.append(self._bind(want))
        except BaseException:
            for _, sock in taken:
                sock.close()
            raise
        with self._lock:
            self._held.setdefault(owner, []).extend(taken)
        return [binding for binding, _ in taken]

    def release(self, owner: str) -> list[Binding]:
        """Close ``owner``'s sockets: the ports are free again."""
        with self._lock:
            held = self._held.pop(owner, [])
        for _, sock in held:
            sock.close()
        return [binding for binding, _ in held]

    def held(self, owner: str) -> list[Binding]:
        with self._lock:
            return [binding for binding, _ in self._held.get(owner, [])]

    def restore(self, records: Iterable[tuple[str, Binding]]) -> list[PortClash]:
        """Hold again the ports of running containers (after a restart).
        A port someone took meanwhile is not fatal to the others: its clash
        comes back for the caller to report (or to stop that container)."""
        clashes = []
        for owner, binding in records:
            try:
                self.reserve(owner, [binding])
            except PortClash as clash:
                clashes.append(clash)
        return clashes

    def close(self) -> None:
        with self._lock:
            owners = list(self._held)
        for owner in owners:
            self.release(owner)

    @staticmethod
    def _bind(want: Binding) -> tuple[Binding, socket.socket]:
        kind = socket.SOCK_STREAM if want.protocol is Protocol.TCP else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.bind((str(want.host_ip), want.host_port))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                raise PortClash(want) from None
            if err.errno == errno.EADDRNOTAVAIL:
                why = f"{want.host_ip} is not an address of the host"
                raise InvalidArgument("host_ip", why) from None
            raise
        port: int = sock.getsockname()[1]
        return Binding(want.protocol, want.host_ip, port), sock
