"""runtime/network/dns.py without root: messages, the name table, and the
server on 127.0.0.1 (ephemeral ports) with a fake upstream on loopback."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.network import dns

A = IPv4Address
LO = A("127.0.0.1")


def test_a_query_encodes_as_rfc_1035_and_parses_back() -> None:
    raw = dns.encode_query(0xBEEF, "web.example")
    assert raw == (
        struct.pack("!HHHHHH", 0xBEEF, dns.FLAG_RD, 1, 0, 0, 0)
        + b"\x03web\x07example\x00"
        + struct.pack("!HH", dns.TYPE_A, dns.CLASS_IN)
    )
    query = dns.Message.parse(raw)
    assert (query.id, query.opcode, query.is_response) == (0xBEEF, 0, False)
    assert query.questions == (dns.Question("web.example"),)


def test_an_answer_points_back_at_the_questions_name() -> None:
    query = dns.Message.parse(dns.encode_query(7, "db"))
    answer = dns.response(query, dns.NOERROR, [A("10.0.0.2"), A("10.0.0.3")])
    raw = answer.encode()
    # Each answer's name is the pointer 0xC00C: offset 12, the question's name.
    assert raw.count(b"\xc0\x0c") == 2
    parsed = dns.Message.parse(raw)
    assert parsed.is_response and parsed.rcode == dns.NOERROR and parsed.flags & dns.FLAG_AA
    assert parsed.flags & dns.FLAG_RD  # copied from the query
    assert parsed.addresses() == [A("10.0.0.2"), A("10.0.0.3")]
    assert {r.name for r in parsed.answers} == {"db"}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01",  # shorter than a header
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",  # a label past the end
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer loop
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x00\x00",  # a question cut short
    ],
)
def test_malformed_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(dns.MessageError):
        dns.Message.parse(raw)


def test_names_are_checked_and_case_insensitive() -> None:
    table = dns.NameTable()
    table.add("net1", A("10.0.0.2"), ["Web", "web-1.alias"])
    assert table.lookup("net1", "WEB.") == [A("10.0.0.2")]
    assert table.lookup("net1", "web-1.alias") == [A("10.0.0.2")]
    assert table.lookup("net2", "web") is None
    for bad in ["", "-web", "we b", "web\n1.2.3.4 evil", "a" * 64]:
        with pytest.raises(InvalidArgument):
            table.add("net1", A("10.0.0.9"), [bad])


def test_removing_an_address_forgets_its_names_and_keeps_the_others() -> None:
    table = dns.NameTable()
    table.add("n", A("10.0.0.2"), ["web", "shared"])
    table.add("n", A("10.0.0.3"), ["db", "shared"])
    table.remove("n", A("10.0.0.2"))
    assert table.lookup("n", "web") is None
    assert table.lookup("n", "shared") == [A("10.0.0.3")]
    table.drop_network("n")
    assert table.lookup("n", "db") is None


def test_upstreams_come_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# x\nnameserver 127.0.0.53\nsearch lan\nnameserver fe80::1%eth0\nnameserver x\n"
    )
    assert dns.upstreams_from(conf) == [("127.0.0.53", 53), ("fe80::1", 53)]
    assert dns.upstreams_from(tmp_path / "none") == []


class FakeUpstream:
    """A resolver on 127.0.0.1 that answers every A query with 192.0.2.7."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, client = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.Message.parse(raw)
            self.asked.append(query.questions[0].name)
            self.sock.sendto(dns.response(query, dns.NOERROR, [A("192.0.2.7")]).encode(), client)


def ask(where: tuple[str, int], name: str, qtype: int = dns.TYPE_A) -> dns.Message:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(dns.encode_query(0x4242, name, qtype), where)
        reply = dns.Message.parse(sock.recv(4096))
    assert reply.id == 0x4242 and reply.is_response
    return reply


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    yield fake
    fake.sock.close()


def test_the_server_answers_per_network_and_forwards_the_rest(upstream: FakeUpstream) -> None:
    table = dns.NameTable()
    server = dns.DnsServer(table, upstreams=[upstream.address], timeout=1)
    try:
        one = server.listen("one", LO, 0)
        two = server.listen("two", A("127.0.0.2"), 0)
        table.add("one", A("10.1.0.2"), ["web", "www"])
        table.add("two", A("10.2.0.2"), ["db"])
        assert ask(one, "web").addresses() == [A("10.1.0.2")]
        assert ask(one, "WWW").addresses() == [A("10.1.0.2")]
        assert ask(two, "db").addresses() == [A("10.2.0.2")]
        # Another network's name, or none at all: NXDOMAIN, never forwarded.
        assert ask(one, "db").rcode == dns.NXDOMAIN
        assert ask(two, "web").rcode == dns.NXDOMAIN
        # A known name, another type: no answer, no error (NODATA).
        nodata = ask(one, "web", dns.TYPE_AAAA)
        assert (nodata.rcode, nodata.answers) == (dns.NOERROR, ())
        # A dotted name goes to the upstream and its answer comes back.
        forwarded = ask(one, "example.org")
        assert forwarded.addresses() == [A("192.0.2.7")]
        assert upstream.asked == ["example.org"]
        table.remove("one", A("10.1.0.2"))
        assert ask(one, "web").rcode == dns.NXDOMAIN
        server.unlisten("two")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(two)  # the port is free again
    finally:
        server.close()


def test_no_upstream_is_refused_and_a_silent_one_is_a_servfail() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    for upstreams, rcode in [([], dns.REFUSED), ([silent.getsockname()], dns.SERVFAIL)]:
        server = dns.DnsServer(dns.NameTable(), upstreams=upstreams, timeout=0.2)
        try:
            where = server.listen("n", LO, 0)
            assert ask(where, "example.org").rcode == rcode
        finally:
            server.close()
    silent.close()


def test_a_refusing_upstream_is_skipped_for_the_next(upstream: FakeUpstream) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
    server = dns.DnsServer(dns.NameTable(), upstreams=[dead, upstream.address], timeout=2)
    try:
        where = server.listen("n", LO, 0)
        assert ask(where, "example.org").addresses() == [A("192.0.2.7")]
    finally:
        server.close()


def test_garbage_gets_formerr_and_the_server_goes_on() -> None:
    server = dns.DnsServer(dns.NameTable(), upstreams=[])
    try:
        where = server.listen("n", LO, 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(b"\x12\x34\x00", where)
            raw = sock.recv(512)
        assert struct.unpack("!HH", raw[:4]) == (0x1234, dns.FLAG_QR | dns.FORMERR)
        assert ask(where, "nobody").rcode == dns.NXDOMAIN
    finally:
        server.close()
