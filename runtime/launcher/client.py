"""The API process's side of the launcher protocol.

``LauncherClient`` connects to the launcher of a state dir, starting one with
``subprocess`` when none answers (the launcher is its own session, so it
outlives the API process).  Requests may come from any thread; one reader
thread receives replies and events in the order the launcher sent them and
hands events to ``on_event`` on that same thread, so the caller sees a
launch's reply before that container's exit.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from runtime.errors import InvalidState, NotFound, RuntimeFailure, StorageFull, Unavailable
from runtime.launcher import protocol

log = logging.getLogger("mydocker.launcher.client")

EventHandler = Callable[[dict[str, Any]], None]
ReplyHandler = Callable[[dict[str, Any]], None]

REQUEST_TIMEOUT = 60.0


class Disconnected(Unavailable):
    """The connection dropped while a request was on its way: the launcher may
    or may not have acted on it (the reconcile that follows finds out)."""


class UnknownOp(RuntimeFailure):
    """The launcher predates this op (it outlives API upgrades): the caller
    falls back to the ops it has."""


SPAWN_TIMEOUT = 10.0


class LauncherClient:
    def __init__(
        self,
        state_dir: str,
        on_event: EventHandler,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.socket_path = os.path.join(state_dir, "launcher.sock")
        self._on_event = on_event
        self._on_disconnect = on_disconnect
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._pending: dict[int, tuple[Future[dict[str, Any]], ReplyHandler | None]] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = False
        self.launcher_pid: int | None = None

    # -- connection -----------------------------------------------------
    def connect(self) -> None:
        """Connect, starting a launcher if none listens yet."""
        with self._connect_lock:
            if self._sock is not None:
                return
            sock = self._try_connect()
            if sock is None:
                self._spawn()
                deadline = time.monotonic() + SPAWN_TIMEOUT
                while sock is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    sock = self._try_connect()
                if sock is None:
                    raise Unavailable(f"the launcher did not start; see {self._log_path()}")
            self._sock = sock
            reader = threading.Thread(
                target=self._read_loop, args=(sock,), name="launcher-reader", daemon=True
            )
            reader.start()
        hello = self.request({"op": "hello"})
        self.launcher_pid = hello["pid"]
        if hello["version"] != protocol.VERSION:
            raise Unavailable(f"the launcher speaks protocol {hello['version']}")

    def _try_connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        return sock

    def _log_path(self) -> str:
        return os.path.join(self.state_dir, "launcher.log")

    def _spawn(self) -> None:
        # The launcher's own session (setsid) keeps it out of the API's
        # process group: a Ctrl-C or SIGTERM to the API does not reach the
        # containers' parent.  Its PYTHONPATH is the one the API runs with.
        project_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, env.get("PYTHONPATH")]))
        with open(self._log_path(), "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "runtime.launcher", "--state-dir", self.state_dir],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        # The launcher is our child until we exit: reap it when it ends (an
        # idle exit, a crash) so that no zombie is left behind (wait(2)).
        threading.Thread(
            target=process.wait, name=f"reap-launcher-{process.pid}", daemon=True
        ).start()

    def close(self) -> None:
        self._closing = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # -- requests -------------------------------------------------------
    def request(
        self,
        message: dict[str, Any],
        timeout: float = REQUEST_TIMEOUT,
        on_reply: ReplyHandler | None = None,
    ) -> dict[str, Any]:
        """Send a request and wait for its reply.

        ``on_reply`` runs on the reader thread before any later message is
        handled: the place to record what the reply says before an event
        about the same container can arrive.
        """
        if self._sock is None:
            self.connect()
        sock = self._sock
        if sock is None:
            raise Unavailable("the launcher is not connected")
        req = next(self._ids)
        future: Future[dict[str, Any]] = Future()
        with self._pending_lock:
            self._pending[req] = (future, on_reply)
        try:
            with self._send_lock:
                protocol.send(sock, {**message, "req": req})
        except OSError as err:
            with self._pending_lock:
                self._pending.pop(req, None)
            raise Disconnected(f"the launcher is gone: {err}") from err
        try:
            reply = future.result(timeout)
        except FutureTimeout as err:
            with self._pending_lock:
                self._pending.pop(req, None)
            raise Unavailable(f"the launcher did not answer {message['op']!r} in time") from err
        if not reply.get("ok"):
            kind, error = reply.get("kind"), reply.get("error", "launcher error")
            if kind == "not_found":
                raise NotFound("container", message.get("id", "?"))
            if kind == "invalid_state":
                raise InvalidState(error)
            if kind == "invalid" and error.startswith("unknown op"):
                raise UnknownOp(error)
            if reply.get("errno") in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("launcher", error)
            raise RuntimeFailure(error)
        return reply

    def notify(self, message: dict[str, Any]) -> None:
        """Send a request whose reply nobody waits for (safe on the reader thread)."""
        sock = self._sock
        if sock is None:
            return
        try:
            with self._send_lock:
                protocol.send(sock, {**message, "req": 0})
        except OSError:
            pass  # the reader thread notices the loss

    def _read_loop(self, sock: socket.socket) -> None:
        reader = protocol.LineReader()
        try:
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    break
                for message in reader.feed(data):
                    self._dispatch(message)
        except (OSError, ValueError) as err:
            if not self._closing:
                log.error("lost the launcher: %s", err)
        finally:
            self._sock = None
            sock.close()  # a dropped connection's fd, not leaked per reconnect
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            for future, _ in pending.values():
                future.set_exception(Disconnected("the launcher went away"))
            if not self._closing and self._on_disconnect is not None:
                self._on_disconnect()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "event" in message:
            try:
                self._on_event(message)
            except Exception:
                log.exception("handling launcher event %s failed", message.get("event"))
            return
        with self._pending_lock:
            future, on_reply = self._pending.pop(message.get("req", -1), (None, None))
        if future is None:
            return  # the requester gave up waiting
        if on_reply is not None and message.get("ok"):
            try:
                on_reply(message)
            except Exception as err:
                log.exception("handling a launcher reply failed")
                future.set_exception(err)
                return
        future.set_result(message)
