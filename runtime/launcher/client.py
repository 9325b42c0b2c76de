"""The API process's side of the launcher protocol.

``LauncherClient`` connects to the launcher of a state dir, starting one with
``subprocess`` when none answers (the launcher is its own session, so it
outlives the API process).  Requests may come from any thread; one reader
thread receives replies and events in the order the launcher sent them and
hands events to ``on_event`` on that same thread, so the caller sees a
launch's reply before that container's exit.

    LauncherClient.request(op) -> op's reply   typed both ways (protocol.py)
    LauncherClient.submit(op) -> Future        the same without waiting: the reader
                                               thread completes it (an event loop
                                               awaits it through asyncio.wrap_future)
    LauncherClient.notify(op)                  a request nobody waits for (ack)
    ERRORS                                     ErrorKind -> the runtime's exception
    Disconnected, UnknownOp                    the client's own failures
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
from typing import Any, TypeVar

from runtime.errors import InvalidState, NotFound, RuntimeFailure, StorageFull, Unavailable
from runtime.launcher import framing, protocol
from runtime.launcher.protocol import ErrorKind, ErrorReply, Reply, Request

log = logging.getLogger("mydocker.launcher.client")

R = TypeVar("R", bound=Reply)
EventHandler = Callable[[protocol.Event], None]
ReplyHandler = Callable[[Any], None]

REQUEST_TIMEOUT = 60.0


class Disconnected(Unavailable):
    """The connection dropped while a request was on its way: the launcher may
    or may not have acted on it (the reconcile that follows finds out)."""


class UnknownOp(RuntimeFailure):
    """The launcher predates this op (it outlives API upgrades): the caller
    falls back to the ops it has."""


SPAWN_TIMEOUT = 10.0


def _failed(op: Request[Any], reply: ErrorReply) -> RuntimeFailure:
    if reply.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("launcher", reply.error)
    return RuntimeFailure(reply.error)


#: How a refusal becomes one of the runtime's exceptions (runtime/errors.py).
ERRORS: dict[ErrorKind, Callable[[Request[Any], ErrorReply], RuntimeFailure]] = {
    # The op's id: for an exec, the container it names is the one not found.
    ErrorKind.NOT_FOUND: lambda op, reply: NotFound("container", getattr(op, "id", "?")),
    ErrorKind.INVALID_STATE: lambda op, reply: InvalidState(reply.error),
    ErrorKind.INVALID: lambda op, reply: UnknownOp(reply.error),
    ErrorKind.FAILED: _failed,
}


def error_for(op: Request[Any], reply: ErrorReply) -> RuntimeFailure:
    return ERRORS[reply.kind](op, reply)


class LauncherClient:
    def __init__(
        self,
        state_dir: str,
        on_event: EventHandler,
        on_disconnect: Callable[[], None] | None = None,
        favordynmods: bool = False,
    ) -> None:
        self.state_dir = state_dir
        #: Whether a launcher started by this client holds a favordynmods
        #: cgroup hierarchy (runtime/cgroups/dynmods.py).
        self.favordynmods = favordynmods
        self.socket_path = os.path.join(state_dir, "launcher.sock")
        self._on_event = on_event
        self._on_disconnect = on_disconnect
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = False
        self.launcher_pid: int | None = None
        #: Sent after every hello, so a restarted launcher fills its warm
        #: pool again (runtime/launcher/pool.py); None: no pool asked for.
        self.pool: protocol.Pool | None = None

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
        hello = self.request(protocol.Hello())
        self.launcher_pid = hello.pid
        if hello.version != protocol.VERSION:
            raise Unavailable(f"the launcher speaks protocol {hello.version}")
        if self.pool is not None:
            self.request(self.pool)

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
                [
                    sys.executable,
                    "-m",
                    "runtime.launcher",
                    "--state-dir",
                    self.state_dir,
                    *(("--favordynmods",) if self.favordynmods else ()),
                ],
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
        op: Request[R],
        timeout: float = REQUEST_TIMEOUT,
        on_reply: Callable[[R], None] | None = None,
    ) -> R:
        """Send a request and wait for its reply; a refusal raises the
        runtime's exception for its kind (``ERRORS``).

        ``on_reply`` runs on the reader thread before any later message is
        handled: the place to record what the reply says before an event
        about the same container can arrive.
        """
        future = self.submit(op, on_reply)
        try:
            return future.result(timeout)
        except FutureTimeout as err:
            future.cancel()  # forgets the request: a late reply is dropped
            raise Unavailable(f"the launcher did not answer {op.OP!r} in time") from err

    def submit(self, op: Request[R], on_reply: Callable[[R], None] | None = None) -> Future[R]:
        """Send a request without waiting: its future completes on the reader
        thread with the reply (after ``on_reply``), or fails with the
        runtime's exception for a refusal, ``Disconnected`` for a lost
        connection.  Cancelling it forgets the request (a late reply is
        dropped).  Connecting, if needed, happens here and may raise."""
        if self._sock is None:
            self.connect()
        sock = self._sock
        if sock is None:
            raise Unavailable("the launcher is not connected")
        req = next(self._ids)
        pending = _Pending(op, on_reply)
        with self._pending_lock:
            self._pending[req] = pending
        pending.future.add_done_callback(lambda done: self._forget(req, done))
        try:
            with self._send_lock:
                sock.sendall(protocol.encode_request(req, op))
        except OSError as err:
            # Whoever takes it out of ``_pending`` completes it: the reader
            # thread may have failed it already (it sweeps them when the
            # connection drops).
            with self._pending_lock:
                ours = self._pending.pop(req, None) is not None
            if ours and pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(Disconnected(f"the launcher is gone: {err}"))
        return pending.future  # type: ignore[return-value]

    def _forget(self, req: int, done: Future[Any]) -> None:
        if done.cancelled():
            with self._pending_lock:
                self._pending.pop(req, None)

    def notify(self, op: Request[Any]) -> None:
        """Send a request whose reply nobody waits for (safe on the reader thread)."""
        sock = self._sock
        if sock is None:
            return
        try:
            with self._send_lock:
                sock.sendall(protocol.encode_request(0, op))
        except OSError:
            pass  # the reader thread notices the loss

    def _read_loop(self, sock: socket.socket) -> None:
        reader = framing.LineReader()
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
            for waiting in pending.values():
                if waiting.future.set_running_or_notify_cancel():
                    waiting.future.set_exception(Disconnected("the launcher went away"))
            if not self._closing and self._on_disconnect is not None:
                self._on_disconnect()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "event" in message:
            try:
                event = protocol.decode_event(message)
                if event is not None:
                    self._on_event(event)
            except Exception:
                log.exception("handling launcher event %s failed", message.get("event"))
            return
        with self._pending_lock:
            pending = self._pending.pop(message.get("req", -1), None)
        # Cancelled: the requester gave up waiting (its future can no
        # longer change, and running it marks it taken, so no cancel races
        # the reply's recording).
        if pending is None or not pending.future.set_running_or_notify_cancel():
            return
        try:
            if not message.get("ok"):
                pending.future.set_exception(error_for(pending.op, ErrorReply.from_wire(message)))
                return
            reply = pending.op.reply(message)
            if pending.on_reply is not None:
                pending.on_reply(reply)
        except Exception as err:
            log.exception("handling a launcher reply failed")
            pending.future.set_exception(err)
            return
        pending.future.set_result(reply)


class _Pending:
    """A request waiting for its reply."""

    def __init__(self, op: Request[Any], on_reply: ReplyHandler | None) -> None:
        self.op = op
        self.on_reply = on_reply
        self.future: Future[Reply] = Future()
