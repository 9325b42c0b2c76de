"""runtime.launcher.protocol: every typed op, reply, error and event
round-tripped through its wire form (the JSON lines of framing.py)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.launcher import protocol as p
from runtime.launcher.framing import LineReader, encode
from runtime.spec import Status

EXEC_ERROR = p.ExecError(step="mount /proc", errno=1, message="mount /proc: EPERM", exit_code=125)
RESULTS = p.Results(True, False, True, 0.25, 1 << 20, 1.5)
STATUS = p.ExitStatus(137, "SIGKILL", "2026-01-01T00:00:00Z", RESULTS)

REQUESTS: list[p.Request[Any]] = [
    p.Hello(),
    p.List(),
    p.Create("c", {"command": ["true"]}, "/o", "/e", start=False, tty_size=(24, 80), pidfile="/p"),
    p.Create("c", {"command": ["true"]}, "/o", "/e"),
    p.Start("c"),
    p.Exec("x", "c", {"command": ["sh"]}, "/o", "/e", tty_size=None),
    p.Kill("c", 15),
    p.KillMany(("a", "b"), 9),
    p.Write("c", b"\x00binary\xff"),
    p.CloseStdin("c"),
    p.Resize("c", 24, 80),
    p.Stats("c"),
    p.Ack("c"),
    p.Pool(),
    p.Pool((p.PoolTemplate(4, {"command": ["true"]}), p.PoolTemplate(0, {}))),
    p.Connect("c", {"network": "n", "ifname": "eth1", "address": "10.0.0.2/24"}),
    p.Disconnect("c", "vethabcdefghx1"),
]


def test_every_op_has_a_request_here() -> None:
    assert {type(op).OP for op in REQUESTS} == set(p.OPS)


@pytest.mark.parametrize("op", REQUESTS, ids=lambda op: type(op).__name__)
def test_requests_round_trip_through_json(op: p.Request[Any]) -> None:
    [message] = LineReader().feed(p.encode_request(7, op))
    assert message["req"] == 7 and message["op"] == op.OP
    assert p.decode_request(message) == op


def test_the_wire_keys_of_requests_stay_as_launchers_know_them() -> None:
    """Launchers outlive API upgrades: the keys are the protocol, not a detail."""
    assert p.Kill("c", 9).to_wire() == {"op": "kill", "id": "c", "signal": 9}
    assert p.Write("c", b"hi").to_wire() == {"op": "write", "id": "c", "data": "aGk="}
    assert p.KillMany(("a",), 9).to_wire() == {"op": "kill_many", "ids": ["a"], "signal": 9}
    assert p.Create("c", {}, "/o", "/e", tty_size=(2, 3)).to_wire()["tty_size"] == [2, 3]


REPLIES: list[tuple[p.Request[Any], p.Reply]] = [
    (p.Hello(), p.HelloReply(p.VERSION, 42)),
    (p.Start("c"), p.Launched(5, 123, "2026-01-01T00:00:00Z", EXEC_ERROR)),
    (p.Create("c", {}, "/o", "/e", start=False), p.Launched(5, 123)),
    (p.Exec("x", "c", {}, "/o", "/e"), p.Launched(6, None, "2026-01-01T00:00:00Z")),
    (p.Kill("c", 9), p.Done()),
    (p.KillMany(("a", "b"), 9), p.KillManyReply(("a",), ("b",))),
    (p.Stats("c"), p.StatsReply(100, 200, 0.5, 3)),
    (p.Pool(), p.PoolReply(2, 1, 10, 3, (1 << 20, 2 << 20), (6, 6))),
    (
        p.List(),
        p.ListReply(
            (
                p.EntryInfo(
                    "c", p.EntryKind.CONTAINER, None, 5, 1, Status.exited, "t", None, STATUS
                ),
                p.EntryInfo(
                    "x", p.EntryKind.EXEC, "c", 6, None, Status.running, "t", EXEC_ERROR, None
                ),
            )
        ),
    ),
]


@pytest.mark.parametrize(("op", "reply"), REPLIES, ids=lambda x: type(x).__name__)
def test_replies_round_trip_through_json(op: p.Request[Any], reply: p.Reply) -> None:
    [message] = LineReader().feed(p.encode_reply(3, reply))
    assert message["req"] == 3 and message["ok"] is True
    assert op.reply(message) == reply


def test_stats_reply_keeps_its_nested_wire_form() -> None:
    wire = p.StatsReply(1, 2, 0.5, 3).to_wire()
    assert wire == {
        "stats": {"memory_bytes": 1, "memory_peak_bytes": 2, "cpu_seconds": 0.5, "pids": 3}
    }


@pytest.mark.parametrize("kind", list(p.ErrorKind))
def test_error_replies_round_trip_with_their_kind(kind: p.ErrorKind) -> None:
    errno_ = 28 if kind is p.ErrorKind.FAILED else None
    [message] = LineReader().feed(p.encode_reply(4, p.ErrorReply(kind, "why", errno_)))
    assert message["ok"] is False and message["kind"] == kind.value
    assert p.ErrorReply.from_wire(message) == p.ErrorReply(kind, "why", errno_)


def test_an_unknown_error_kind_reads_as_failed() -> None:
    assert (
        p.ErrorReply.from_wire({"ok": False, "kind": "new", "error": "x"}).kind
        is p.ErrorKind.FAILED
    )


def test_an_unknown_op_is_refused_as_invalid() -> None:
    with pytest.raises(p.RequestError, match="unknown op 'nope'") as caught:
        p.decode_request({"req": 1, "op": "nope"})
    assert caught.value.kind is p.ErrorKind.INVALID


@pytest.mark.parametrize(
    "event",
    [
        p.ExitEvent("c", p.EntryKind.CONTAINER, STATUS),
        p.ExitEvent("x", p.EntryKind.EXEC, p.ExitStatus(0, None, "2026-01-01T00:00:00Z")),
    ],
    ids=["container", "exec"],
)
def test_exit_events_round_trip_through_json(event: p.ExitEvent) -> None:
    [message] = LineReader().feed(encode(event.to_wire()))
    assert message["event"] == "exit" and message["kind"] == event.kind.value
    assert ("results" in message) is (event.exit.results is not None)  # containers only
    assert p.decode_event(message) == event


def test_an_unknown_event_is_ignored() -> None:
    assert p.decode_event({"event": "future"}) is None
