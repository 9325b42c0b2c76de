"""The launcher's side of its clients: accept, read requests, queue output.

    Client     one connection: its socket, the line reader, output not sent yet
    Transport  the listener and every client; replies at once, events per turn

Requests are handed to ``on_request`` (server.py) as decoded JSON objects;
replies and events go out encoded by protocol.py.
"""

from __future__ import annotations

import functools
import logging
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.launcher import framing, protocol
from runtime.launcher.ready import Ready, Source

log = logging.getLogger("mydocker.launcher")

#: Output a client has not read; past this it is dropped (it reconnects and
#: reconciles), rather than the launcher holding ever more for it.
MAX_CLIENT_OUTPUT = 64 << 20


@dataclass(eq=False)
class Client:
    sock: socket.socket
    reader: framing.LineReader = field(default_factory=framing.LineReader)
    alive: bool = True
    #: Replies and events the socket did not take yet (it is non-blocking).
    output: bytearray = field(default_factory=bytearray)


RequestHandler = Callable[[Client, dict[str, Any]], None]


class Transport:
    def __init__(
        self, listener: socket.socket, selector: selectors.BaseSelector, on_request: RequestHandler
    ) -> None:
        self.listener = listener
        self.selector = selector
        self.on_request = on_request
        self.clients: list[Client] = []
        selector.register(listener, selectors.EVENT_READ, Ready(Source.LISTENER, self._accept))

    def _accept(self, mask: int) -> None:
        self.accept()

    def accept(self) -> None:
        sock, _ = self.listener.accept()
        # Never block on a client: the API's reader thread also sends (acks),
        # so a launcher blocked writing a burst of exit events into a full
        # socket, while the API is blocked writing acks into ours, would wait
        # for each other for ever.  Unsent output is kept and sent when the
        # socket is writable (unix(7): a stream socket's buffer is ~200 KiB).
        sock.setblocking(False)
        client = Client(sock)
        self.clients.append(client)
        self.selector.register(sock, selectors.EVENT_READ, self._ready(client))

    def _ready(self, client: Client) -> Ready:
        return Ready(Source.CLIENT, functools.partial(self.client_ready, client))

    def client_ready(self, client: Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and client.alive:
            self.flush(client)
        if mask & selectors.EVENT_READ and client.alive:
            self.read(client)

    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        try:
            messages = client.reader.feed(data)
        except ValueError as err:
            log.warning("dropping a client that sent garbage: %s", err)
            self.drop(client)
            return
        for message in messages:
            self.on_request(client, message)

    def drop(self, client: Client) -> None:
        client.alive = False
        self.selector.unregister(client.sock)
        client.sock.close()
        self.clients.remove(client)

    def reply(self, client: Client, req: int, reply: protocol.Reply | protocol.ErrorReply) -> None:
        """Queue a reply.  One somebody waits for goes out at once (with what
        was queued before it); replies to requests sent with ``req`` 0 (the
        API's acks, which nobody waits for) wait, like events, for the end of
        this turn of the loop (``flush_all``)."""
        if self._queue(client, protocol.encode_reply(req, reply)) and req:
            self.flush(client)

    def broadcast(self, event: protocol.Event) -> None:
        """Queue an event for every client, sent at the end of this turn of
        the loop: one send(2), and one wake-up of the API's reader, for a
        burst of exits."""
        data = framing.encode(event.to_wire())
        for client in list(self.clients):
            self._queue(client, data)

    def _queue(self, client: Client, data: bytes) -> bool:
        """False if the client is gone, or dropped now for not reading."""
        if not client.alive:
            return False
        client.output += data
        if len(client.output) > MAX_CLIENT_OUTPUT:
            log.warning("dropping a client that has not read %d bytes", len(client.output))
            self.drop(client)
            return False
        return True

    def flush_all(self) -> None:
        for client in list(self.clients):
            if client.output:
                self.flush(client)

    def flush(self, client: Client) -> None:
        """Send queued output until the socket would block; ask the selector
        for writability only while some is left."""
        try:
            while client.output:
                sent = client.sock.send(client.output)
                del client.output[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self.drop(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.output else 0)
        key = self.selector.get_map().get(client.sock)
        if key is not None and key.events != events:
            self.selector.modify(client.sock, events, key.data)

    def close(self) -> None:
        for client in list(self.clients):
            self.drop(client)
