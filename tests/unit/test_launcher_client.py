"""runtime.launcher.client against a fake launcher on the state dir's socket:
how replies map onto the runtime's errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidState, RuntimeFailure
from runtime.launcher import framing, protocol
from runtime.launcher.client import Disconnected, LauncherClient, UnknownOp


@dataclass(frozen=True)
class Refuse(protocol.Request[protocol.Done]):
    """An op only the fake launcher knows."""

    OP = "refuse"
    REPLY = protocol.Done


@dataclass(frozen=True)
class Hold(protocol.Request[protocol.Done]):
    """Answered once ``RELEASE`` is set."""

    OP = "hold"
    REPLY = protocol.Done


RELEASE = threading.Event()
#: Set before ``RELEASE``: the fake launcher hangs up instead of answering.
HANG_UP = threading.Event()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[LauncherClient]:
    """A client whose launcher knows ``hello`` and nothing else (as an old one
    knows no newer op) and answers ``refuse`` with invalid_state, ``hold``
    once released (or hangs up then)."""
    RELEASE.clear()
    HANG_UP.clear()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "launcher.sock"))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        reader = framing.LineReader()
        with conn:
            while data := conn.recv(1 << 16):
                for message in reader.feed(data):
                    reply: dict[str, Any] = {"req": message["req"]}
                    if message["op"] == "hold":
                        RELEASE.wait(10)
                        if HANG_UP.is_set():
                            return
                        reply |= {"ok": True}
                    elif message["op"] == "hello":
                        reply |= {"ok": True, "version": protocol.VERSION, "pid": 1}
                    elif message["op"] == "refuse":
                        reply |= {"ok": False, "kind": "invalid_state", "error": "not now"}
                    else:
                        error = f"unknown op {message['op']!r}"
                        reply |= {"ok": False, "kind": "invalid", "error": error}
                    framing.send(conn, reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = LauncherClient(str(tmp_path), on_event=lambda event: None)
    client.connect()
    yield client
    client.close()
    thread.join(5)
    listener.close()


def test_an_op_the_launcher_lacks_is_unknown_op(client: LauncherClient) -> None:
    with pytest.raises(UnknownOp, match="unknown op 'kill_many'"):
        client.request(protocol.KillMany((), 9), timeout=5)


def test_other_refusals_keep_their_own_errors(client: LauncherClient) -> None:
    with pytest.raises(InvalidState, match="not now") as caught:
        client.request(Refuse(), timeout=5)
    assert not isinstance(caught.value, UnknownOp)
    assert issubclass(UnknownOp, RuntimeFailure)


def test_a_submitted_request_carries_its_refusal(client: LauncherClient) -> None:
    future = client.submit(Refuse())
    assert isinstance(future.exception(5), InvalidState)


def test_a_cancelled_request_is_forgotten_and_its_reply_dropped(client: LauncherClient) -> None:
    replies: list[protocol.Done] = []
    future = client.submit(Hold(), on_reply=replies.append)
    assert future.cancel()
    assert client._pending == {}
    RELEASE.set()
    client.request(protocol.Hello(), timeout=5)  # answered after the held one
    assert replies == [] and future.cancelled()


def test_a_lost_connection_fails_what_is_pending(client: LauncherClient) -> None:
    held = client.submit(Hold())
    HANG_UP.set()
    RELEASE.set()
    assert isinstance(held.exception(5), Disconnected)


def test_a_send_that_fails_gives_a_failed_future_not_an_error(client: LauncherClient) -> None:
    """The request is on the books before the send fails: the future fails
    with ``Disconnected`` (the reader thread, sweeping the requests of a
    dropped connection, may be the one that fails it instead)."""
    real = client._sock
    broken, peer = socket.socketpair()
    peer.close()  # sending to ``broken`` fails with EPIPE
    client._sock = broken
    try:
        future = client.submit(Refuse())
    finally:
        client._sock = real
        broken.close()
    assert isinstance(future.exception(5), Disconnected)
    assert client._pending == {}
