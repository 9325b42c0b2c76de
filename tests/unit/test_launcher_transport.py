"""The launcher's sends to its clients never block its loop: what a client
does not read yet is queued and sent in order once its socket is writable.

A blocking send deadlocked a bulk kill of 2,000 containers: the launcher
blocked writing the burst of exit events into the API's full socket, while
the API's reader thread, which also sends (acks), blocked writing into the
launcher's."""

from __future__ import annotations

import os
import selectors
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.launcher import framing, protocol, server, transport
from runtime.launcher.ready import Ready, Source

pytestmark = pytest.mark.timeout(30)  # the bug this guards against was a hang


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[server.Launcher, socket.socket]]:
    """A launcher and a client connected through its listener."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "launcher.sock"))
    listener.listen(1)
    launcher = server.Launcher(listener)
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.connect(str(tmp_path / "launcher.sock"))
    launcher.transport.accept()
    yield launcher, peer
    peer.close()
    launcher.transport.close()
    launcher.selector.close()
    listener.close()


def events(launcher: server.Launcher) -> int:
    [client] = launcher.transport.clients
    return launcher.selector.get_map()[client.sock].events


def exit_event(n: int) -> protocol.ExitEvent:
    """An exit event whose ``exit_code`` numbers it."""
    return protocol.ExitEvent(
        f"{n:064x}", protocol.EntryKind.CONTAINER, protocol.ExitStatus(n, None, "t")
    )


def test_a_burst_the_client_does_not_read_is_queued_not_blocked_on(
    pair: tuple[server.Launcher, socket.socket],
) -> None:
    launcher, peer = pair
    [client] = launcher.transport.clients
    count = 5000  # ~0.6 MB of events: several times a unix socket's buffer
    for n in range(count):
        launcher.transport.broadcast(exit_event(n))  # returns: nothing here may block
    launcher.transport.flush_all()  # the end of the loop's turn: what the socket takes
    assert client.output and events(launcher) & selectors.EVENT_WRITE
    reader = framing.LineReader()
    received: list[dict[str, Any]] = []
    peer.settimeout(5)
    while len(received) < count:
        for key, mask in launcher.selector.select(timeout=0):
            if key.data.source is Source.CLIENT and mask & selectors.EVENT_WRITE:
                launcher.transport.flush(client)
        received += reader.feed(peer.recv(1 << 16))
    assert [m["exit_code"] for m in received] == list(range(count))  # all, in order
    assert not client.output and events(launcher) == selectors.EVENT_READ


def test_a_client_that_never_reads_is_dropped_past_the_cap(
    pair: tuple[server.Launcher, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher, _ = pair
    monkeypatch.setattr(transport, "MAX_CLIENT_OUTPUT", 1 << 20)
    n = 0
    while launcher.transport.clients and n < 100_000:
        launcher.transport.broadcast(exit_event(n))
        launcher.transport.flush_all()
        n += 1
    assert launcher.transport.clients == []  # dropped; it reconnects and reconciles
    assert n > 1000  # not before its socket and the queue were full


def test_a_turn_sends_what_it_queued_in_one_go(
    pair: tuple[server.Launcher, socket.socket],
) -> None:
    launcher, peer = pair
    for n in range(3):
        launcher.transport.broadcast(exit_event(n))
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)  # nothing yet: queued until the end of the turn
    launcher.transport.flush_all()
    assert [m["exit_code"] for m in framing.LineReader().feed(peer.recv(1 << 16))] == [0, 1, 2]


def test_a_reply_to_a_notification_waits_for_the_end_of_the_turn(
    pair: tuple[server.Launcher, socket.socket],
) -> None:
    launcher, peer = pair
    [client] = launcher.transport.clients
    launcher.transport.reply(client, 0, protocol.Done())  # an ack's reply: nobody waits
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)
    launcher.transport.flush_all()
    assert framing.LineReader().feed(peer.recv(1 << 16)) == [{"req": 0, "ok": True}]


def test_a_reply_goes_out_at_once_after_the_events_before_it(
    pair: tuple[server.Launcher, socket.socket],
) -> None:
    launcher, peer = pair
    [client] = launcher.transport.clients
    launcher.transport.broadcast(exit_event(0))
    launcher.transport.reply(client, 5, protocol.Done())  # no end of turn needed
    peer.settimeout(5)
    received: list[dict[str, Any]] = []
    reader = framing.LineReader()
    while len(received) < 2:
        received += reader.feed(peer.recv(1 << 16))
    assert received == [exit_event(0).to_wire(), {"req": 5, "ok": True}]


def test_requests_are_still_read_while_output_waits(
    pair: tuple[server.Launcher, socket.socket],
) -> None:
    launcher, peer = pair
    for n in range(5000):
        launcher.transport.broadcast(exit_event(n))
    peer.sendall(framing.encode({"req": 1, "op": "hello"}))
    [client] = launcher.transport.clients
    launcher.transport.read(client)  # handled, and the reply queued behind the events
    assert b'{"req":1,"ok":true,"version"' in client.output  # the socket is full


def test_a_turn_reads_requests_first_and_caps_the_exits(
    pair: tuple[server.Launcher, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher, _ = pair
    [client] = launcher.transport.clients
    done: list[str] = []
    monkeypatch.setattr(launcher.transport, "read", lambda c: done.append("request"))

    def reap(n: int) -> Ready:
        return Ready(Source.PIDFD, lambda mask: done.append(f"reap {n}"))

    # Registered fds (the loop hands on only keys still registered): pipes
    # stand in for the pidfds.
    pipes = [os.pipe() for _ in range(server.REAPS_PER_TURN + 5)]
    exits = [
        (launcher.selector.register(r, selectors.EVENT_READ, reap(n)), selectors.EVENT_READ)
        for n, (r, _) in enumerate(pipes)
    ]
    request = launcher.selector.get_map()[client.sock]
    launcher.turn([*exits, (request, selectors.EVENT_READ)])
    assert done[0] == "request"
    assert done[1:] == [f"reap {n}" for n in range(server.REAPS_PER_TURN)]  # the rest: next turn
    for r, w in pipes:
        launcher.selector.unregister(r)
        os.close(r)
        os.close(w)
