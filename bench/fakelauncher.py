"""``python -m bench.fakelauncher --state-dir DIR``: a launcher that launches nothing.

It listens on ``DIR/launcher.sock`` before the service starts, so the
service connects to it instead of starting the real one, and answers at
once: a ``create`` with a ``Launched`` (this process's pid, no start time)
and, when it starts, that container's exit (code 0) right after; ``hello``,
``list`` and ``pool`` as an empty launcher would; anything else ``ok``.
With it, ``bench.abhttp --fake-launcher`` times the API's side alone: no
clone, no child, no cgroup, so the machine's noise in those does not drown
a change of a few tenths of a millisecond in the API's path.  One thread,
one selector, as the real one.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
from typing import Any

from runtime.launcher import framing, protocol
from runtime.timeutil import now_rfc3339


def _answers(message: dict[str, Any]) -> list[dict[str, Any]]:
    op, req = message.get("op"), message.get("req", 0)
    if op == "ack" or not req:
        return []
    reply: dict[str, Any] = {"req": req, "ok": True}
    if op == "hello":
        reply |= {"version": protocol.VERSION, "pid": os.getpid()}
    elif op == "list":
        reply |= {"containers": []}
    elif op == "pool":
        reply |= {"ready": 0, "filling": 0, "hits": 0, "misses": 0}
    elif op in ("create", "start"):
        now = now_rfc3339()
        reply |= {"pid": os.getpid(), "pid_start_time": None, "started_at": now}
        if op == "start" or message.get("start"):
            exit_event = {"event": "exit", "id": message["id"], "kind": "container"}
            return [reply, {**exit_event, "exit_code": 0, "signal": None, "finished_at": now}]
    return [reply]


def serve(state_dir: str) -> None:
    path = os.path.join(state_dir, "launcher.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    readers: dict[socket.socket, framing.LineReader] = {}
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                conn, _ = listener.accept()
                readers[conn] = framing.LineReader()
                selector.register(conn, selectors.EVENT_READ)
                continue
            data = sock.recv(1 << 16)
            if not data:
                selector.unregister(sock)
                readers.pop(sock)
                sock.close()
                continue
            for message in readers[sock].feed(data):
                for answer in _answers(message):
                    framing.send(sock, answer)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fakelauncher", description=__doc__)
    p.add_argument("--state-dir", required=True)
    args = p.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    try:
        serve(args.state_dir)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
