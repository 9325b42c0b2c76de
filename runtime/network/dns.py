"""The embedded DNS server: container names per network, the rest forwarded.

    Question, Record, Message   RFC 1035 §4 messages: parse and encode what is needed
    encode_query                a query for one name (tests, the benches)
    check_name                  a name a container may be known by (RFC 1123 host names)
    NameTable                   per network: name → addresses; add/remove from any thread
    upstreams_from / _in        the host's resolvers, from /etc/resolv.conf (or its text)
    DnsServer                   one thread, one selector, one UDP socket per network

How a query is answered, on the socket of the network it came in on:

* a name (or alias) of a container on that network, type A: its addresses;
  another type (AAAA, …): no answer and NOERROR (RFC 2308 "NODATA"), so a
  resolver asking for both A and AAAA does not wait for a timeout;
* any other single-label name: NXDOMAIN.  Such a name is meant for us; a
  public resolver has no business seeing it (RFC 7085 on dotless names);
* a name with a dot: forwarded, as it is, to the host's resolvers in turn,
  each given ``timeout`` seconds, and their reply relayed; SERVFAIL when none
  answered, REFUSED when there is none to ask.

Where it listens: the gateway's address of each user network, port 53 (the
address the container's /etc/resolv.conf names, etcfiles.py).  Docker's
embedded DNS listens on 127.0.0.11 inside each container's namespace, which
needs a socket and NAT rules in every container's namespace; one socket per
network in the host's namespace needs neither, tells networks apart by the
socket a query arrives on, and forwards from the host's namespace, where the
host's resolvers (127.0.0.53 included) are reachable.  The cost: the gateway's
port 53 belongs to us (a host resolver bound to 0.0.0.0:53 would clash; say so
rather than fight it), and an internal network's containers reach its gateway
(firewall.py lets them, and nothing else).  UDP only: answers are small (a
name with more than 30 addresses is cut to 30), so no TCP fallback (RFC 7766)
is needed for our names; forwarded answers are relayed as they come, and a
truncated one tells the client's resolver to retry over TCP, which fails: a
documented limit.

Why in the API process: the table is fed by the runtime (create, rename,
remove) and the server needs a thread; the launcher stays single-threaded.
"""

from __future__ import annotations

import errno
import os
import queue
import re
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from runtime.errors import InvalidArgument

# RFC 1035 §3.2.2-3.2.4, §4.1.1
TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
OPCODE_QUERY = 0
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

TTL = 0  # records change as containers come and go; glibc caches nothing anyway
MAX_ANSWERS = 30  # 30 A records fit the 512 bytes of RFC 1035 §4.2.1 with a short name
MAX_PENDING = 256  # forwarded queries in flight; beyond, SERVFAIL at once
# <linux/in.h>; Python's socket module does not export it.
IP_FREEBIND = 15
_HEADER = struct.Struct("!HHHHHH")
_NAME = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*")


class MessageError(ValueError):
    """A message that is not RFC 1035: too short, a bad name or pointer."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int = TYPE_A
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: bytes


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed, §4.1.4) name at ``offset``: the name and the
    offset just past it in the message (not past where a pointer led)."""
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        if offset >= len(data):
            raise MessageError("a name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise MessageError("a name pointer runs past the end")
            if end is None:
                end = offset + 2
            jumps += 1
            if jumps > 20:  # a loop of pointers
                raise MessageError("too many name pointers")
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise MessageError(f"label type {length >> 6} is not supported")
        offset += 1
        if length == 0:
            break
        labels.append(data[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    return ".".join(labels), end if end is not None else offset


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise MessageError(f"label {label!r} is not 1-63 bytes")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


@dataclass(frozen=True)
class Message:
    id: int
    flags: int
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    @classmethod
    def parse(cls, data: bytes) -> Message:
        if len(data) < _HEADER.size:
            raise MessageError("shorter than a header")
        ident, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(data)
        offset = _HEADER.size
        questions = []
        for _ in range(qdcount):
            name, offset = _read_name(data, offset)
            if offset + 4 > len(data):
                raise MessageError("a question runs past the end")
            qtype, qclass = struct.unpack_from("!HH", data, offset)
            offset += 4
            questions.append(Question(name, qtype, qclass))
        answers = []
        for _ in range(ancount):
            name, offset = _read_name(data, offset)
            if offset + 10 > len(data):
                raise MessageError("a record runs past the end")
            rtype, rclass, ttl, length = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            if offset + length > len(data):
                raise MessageError("a record's data runs past the end")
            answers.append(Record(name, rtype, rclass, ttl, data[offset : offset + length]))
            offset += length
        # Authority and additional records (an EDNS OPT, RFC 6891) are not
        # needed: we answer without them, which RFC 6891 §7 allows.
        return cls(ident, flags, tuple(questions), tuple(answers))

    def encode(self) -> bytes:
        out = bytearray(
            _HEADER.pack(self.id, self.flags, len(self.questions), len(self.answers), 0, 0)
        )
        names: dict[str, int] = {}
        for q in self.questions:
            names.setdefault(q.name.lower(), len(out))
            out += _encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
        for r in self.answers:
            at = names.get(r.name.lower())
            # §4.1.4: a pointer to the question's copy of the name.
            out += struct.pack("!H", 0xC000 | at) if at is not None else _encode_name(r.name)
            out += struct.pack("!HHIH", r.rtype, r.rclass, r.ttl, len(r.data)) + r.data
        return bytes(out)

    def addresses(self) -> list[IPv4Address]:
        """The A records' addresses."""
        return [IPv4Address(r.data) for r in self.answers if r.rtype == TYPE_A and len(r.data) == 4]


def encode_query(ident: int, name: str, qtype: int = TYPE_A) -> bytes:
    return Message(ident, FLAG_RD, (Question(name, qtype),)).encode()


def response(query: Message, rcode: int, addresses: Sequence[IPv4Address] = ()) -> Message:
    """Our answer to ``query``: authoritative, recursion available (we forward)."""
    flags = FLAG_QR | FLAG_AA | FLAG_RA | (query.flags & FLAG_RD) | rcode
    answers: tuple[Record, ...] = ()
    if addresses:
        q = query.questions[0]
        answers = tuple(
            Record(q.name, TYPE_A, CLASS_IN, TTL, a.packed) for a in addresses[:MAX_ANSWERS]
        )
    return Message(query.id, flags, query.questions[:1], answers)


def check_name(name: str) -> str:
    """A container name or alias as DNS and /etc/hosts will carry it
    (RFC 1123 §2.1 host names, with Docker's `_`): lower-cased."""
    if len(name) > 253 or not _NAME.fullmatch(name):
        raise InvalidArgument("name", f"{name!r} is not a DNS name")
    return name.lower()


class NameTable:
    """Per network key (the runtime's network name or id): name → addresses.

    Every method takes the lock: the runtime's worker threads write while the
    server's thread reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, dict[str, list[IPv4Address]]] = {}

    def add(self, network: str, address: IPv4Address, names: Iterable[str]) -> None:
        checked = [check_name(n) for n in names]
        with self._lock:
            table = self._names.setdefault(network, {})
            for name in checked:
                owners = table.setdefault(name, [])
                if address not in owners:
                    owners.append(address)

    def remove(self, network: str, address: IPv4Address) -> None:
        """Forget every name ``address`` answered to on ``network``."""
        with self._lock:
            table = self._names.get(network, {})
            for name in list(table):
                owners = [a for a in table[name] if a != address]
                if owners:
                    table[name] = owners
                else:
                    del table[name]

    def drop_network(self, network: str) -> None:
        with self._lock:
            self._names.pop(network, None)

    def lookup(self, network: str, name: str) -> list[IPv4Address] | None:
        """The addresses of ``name`` on ``network``; None when it has none."""
        with self._lock:
            owners = self._names.get(network, {}).get(name.rstrip(".").lower())
            return list(owners) if owners else None


def upstreams_from(path: Path = Path("/etc/resolv.conf")) -> list[tuple[str, int]]:
    """resolv.conf(5)'s ``nameserver`` lines, in order, port 53."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return upstreams_in(text)


def upstreams_in(text: str) -> list[tuple[str, int]]:
    """``upstreams_from`` of a resolv.conf's text."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append((str(ip_address(words[1].split("%")[0])), 53))
            except ValueError:
                continue
    return found


@dataclass
class _Pending:
    """A forwarded query waiting for an upstream."""

    listener: socket.socket
    client: tuple[str, int]
    query: Message
    raw: bytes
    tried: int
    deadline: float
    sock: socket.socket = field(repr=False)


class DnsServer:
    """One thread serves every network's socket and the forwarded queries.

    ``listen``/``unlisten`` may be called from any thread: the socket is made
    and bound by the caller (so a clash raises there), then handed to the
    server's thread through a queue and a wake-up socket, since a selector is
    not thread-safe.
    """

    def __init__(
        self,
        table: NameTable,
        upstreams: Sequence[tuple[str, int]] | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.table = table
        self._upstreams = list(upstreams_from() if upstreams is None else upstreams)
        self._timeout = timeout
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[str, socket.socket] = {}
        self._pending: dict[socket.socket, _Pending] = {}
        self._orders: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="dns", daemon=True)
        self._thread.start()

    # -- from any thread -----------------------------------------------------

    def listen(self, network: str, address: IPv4Address, port: int = 53) -> tuple[str, int]:
        """Answer ``network``'s names on ``address``:``port``; returns where it
        is bound (port 0 picks one: tests)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # ip(7) IP_FREEBIND: bind even before the bridge has its address
            # (the service may start before the launcher makes the bridge).
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind((str(address), port))
        except OSError as err:
            sock.close()
            code = err.errno or errno.EINVAL
            raise OSError(code, f"dns: bind {address}:{port}: {os.strerror(code)}") from None
        sock.setblocking(False)
        bound: tuple[str, int] = sock.getsockname()
        self._order(lambda: self._add_listener(network, sock))
        return bound

    def unlisten(self, network: str) -> None:
        self._order(lambda: self._drop_listener(network))

    def close(self) -> None:
        self._stop = True
        self._wake()
        self._thread.join(timeout=5)
        for sock in [*self._listeners.values(), *self._pending]:
            sock.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _order(self, order: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                order()
            finally:
                done.set()

        self._orders.put(run)
        self._wake()
        done.wait(timeout=5)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:  # already full of wake-ups: it will wake
            pass

    # -- in the server's thread ----------------------------------------------

    def _add_listener(self, network: str, sock: socket.socket) -> None:
        self._drop_listener(network)
        self._listeners[network] = sock
        self._selector.register(sock, selectors.EVENT_READ, network)

    def _drop_listener(self, network: str) -> None:
        sock = self._listeners.pop(network, None)
        if sock is not None:
            self._selector.unregister(sock)
            sock.close()

    def _run(self) -> None:
        while not self._stop:
            timeout = None
            if self._pending:
                timeout = max(
                    0.0, min(p.deadline for p in self._pending.values()) - time.monotonic()
                )
            for key, _ in self._selector.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    self._drain_orders()
                elif sock in self._pending:
                    self._relay(sock)
                elif key.data is not None:
                    self._serve(key.data, sock)
            now = time.monotonic()
            for sock, pending in list(self._pending.items()):
                if pending.deadline <= now:
                    self._retry(sock, pending)

    def _drain_orders(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while not self._orders.empty():
            self._orders.get()()

    def _serve(self, network: str, listener: socket.socket) -> None:
        try:
            raw, client = listener.recvfrom(4096)
        except OSError:
            return
        try:
            query = Message.parse(raw)
        except MessageError:
            if len(raw) >= 2:  # enough for an id: say it was malformed
                flags = FLAG_QR | FORMERR
                listener.sendto(_HEADER.pack(raw[0] << 8 | raw[1], flags, 0, 0, 0, 0), client)
            return
        if query.is_response:
            return
        if query.opcode != OPCODE_QUERY or len(query.questions) != 1:
            self._send(listener, client, response(query, NOTIMP))
            return
        question = query.questions[0]
        addresses = self.table.lookup(network, question.name)
        if addresses is not None:
            if question.qtype == TYPE_A and question.qclass == CLASS_IN:
                self._send(listener, client, response(query, NOERROR, addresses))
            else:  # the name exists, not this type: NODATA
                self._send(listener, client, response(query, NOERROR))
        elif "." not in question.name.strip("."):
            self._send(listener, client, response(query, NXDOMAIN))
        elif not self._upstreams:
            self._send(listener, client, response(query, REFUSED))
        elif len(self._pending) >= MAX_PENDING:
            self._send(listener, client, response(query, SERVFAIL))
        else:
            self._forward(listener, client, query, raw, 0)

    def _send(self, listener: socket.socket, client: tuple[str, int], message: Message) -> None:
        try:
            listener.sendto(message.encode(), client)
        except OSError:  # the client went away; UDP has no one to tell
            pass

    def _forward(
        self,
        listener: socket.socket,
        client: tuple[str, int],
        query: Message,
        raw: bytes,
        tried: int,
    ) -> None:
        while tried < len(self._upstreams):
            host, port = self._upstreams[tried]
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                # A connected socket takes replies from that upstream only.
                sock.connect((host, port))
                sock.send(raw)
            except OSError:
                sock.close()
                tried += 1
                continue
            deadline = time.monotonic() + self._timeout
            self._pending[sock] = _Pending(listener, client, query, raw, tried, deadline, sock)
            self._selector.register(sock, selectors.EVENT_READ, None)
            return
        self._send(listener, client, response(query, SERVFAIL))

    def _finish(self, sock: socket.socket) -> _Pending:
        pending = self._pending.pop(sock)
        self._selector.unregister(sock)
        sock.close()
        return pending

    def _relay(self, sock: socket.socket) -> None:
        try:
            reply = sock.recv(65535)
        except OSError as err:
            # ECONNREFUSED: nothing listens there; try the next one now.
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            self._retry(sock, self._pending[sock])
            return
        pending = self._pending[sock]
        if len(reply) < 2 or reply[:2] != pending.raw[:2]:
            return  # not the answer to our question: keep waiting
        self._finish(sock)
        try:
            pending.listener.sendto(reply, pending.client)
        except OSError:
            pass

    def _retry(self, sock: socket.socket, pending: _Pending) -> None:
        self._finish(sock)
        self._forward(
            pending.listener, pending.client, pending.query, pending.raw, pending.tried + 1
        )
