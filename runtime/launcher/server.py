"""The launcher's event loop: clone, release, reap, report.

One thread, one ``selectors`` loop over: the listening socket, client
connections, each child's pidfd (readable once it has exited, pidfd_open(2))
and each child's error pipe (EOF once execve succeeded).  Nothing here blocks
for long, so one launcher serves many concurrent launches: children set
themselves up in parallel while the loop goes on.

Exit statuses are kept until a client acknowledges them (``ack``), so an API
process that was away when a container exited learns its real exit code when
it reconnects.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from runtime import child, exitstatus, libc
from runtime.launcher import protocol
from runtime.namespaces import DEFAULT_NAMESPACES, Namespace, clone_flags, describe
from runtime.procfs import process_start_time
from runtime.security import devices, userns
from runtime.spec import USERNS_SIZE, ContainerSpec, from_dict
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.launcher")

IDLE_EXIT_SECONDS = 5.0


class RequestError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Client:
    sock: socket.socket
    reader: protocol.LineReader = field(default_factory=protocol.LineReader)
    alive: bool = True


@dataclass
class Entry:
    """One child of the launcher, from clone until the client's ack."""

    id: str
    pid: int
    pidfd: int
    pid_start_time: int | None
    sync_write: int
    error_read: int
    state: str = "created"
    error_buffer: bytearray = field(default_factory=bytearray)
    exec_error: dict[str, Any] | None = None
    pending: tuple[Client, int] | None = None
    started_at: str | None = None
    exit: dict[str, Any] | None = None
    devices_cgroup: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "pid_start_time": self.pid_start_time,
            "state": self.state,
            "started_at": self.started_at,
            "exec_error": self.exec_error,
            "exit": self.exit,
        }


class Launcher:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        self.clients: list[Client] = []
        self.entries: dict[str, Entry] = {}
        self.idle_since: float | None = time.monotonic()

    # -- the loop -------------------------------------------------------
    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                kind, obj = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "client":
                    self._read_client(obj)
                elif kind == "error_pipe":
                    self._read_error_pipe(obj)
                elif kind == "pidfd":
                    self._reap(obj)
            if self._idle_too_long():
                log.info("no client and no container for %.0fs; exiting", IDLE_EXIT_SECONDS)
                return

    def _idle_too_long(self) -> bool:
        if self.clients or self.entries:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        return time.monotonic() - self.idle_since > IDLE_EXIT_SECONDS

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        client = Client(sock)
        self.clients.append(client)
        self.selector.register(sock, selectors.EVENT_READ, ("client", client))

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        try:
            messages = client.reader.feed(data)
        except ValueError as err:
            log.warning("dropping a client that sent garbage: %s", err)
            self._drop(client)
            return
        for message in messages:
            self._handle(client, message)

    def _drop(self, client: Client) -> None:
        client.alive = False
        self.selector.unregister(client.sock)
        client.sock.close()
        self.clients.remove(client)

    def _send(self, client: Client, message: dict[str, Any]) -> None:
        if not client.alive:
            return
        try:
            protocol.send(client.sock, message)
        except OSError:
            self._drop(client)

    def _broadcast(self, message: dict[str, Any]) -> None:
        for client in list(self.clients):
            self._send(client, message)

    # -- requests -------------------------------------------------------
    def _handle(self, client: Client, message: dict[str, Any]) -> None:
        req = message.get("req", 0)
        op = message.get("op")
        handler = getattr(self, f"op_{op}", None)
        try:
            if handler is None:
                raise RequestError("invalid", f"unknown op {op!r}")
            result = handler(client, req, message)
        except RequestError as err:
            self._send(client, {"req": req, "ok": False, "kind": err.kind, "error": str(err)})
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.exception("op %s failed", op)
            self._send(client, {"req": req, "ok": False, "kind": "failed", "error": str(err)})
        else:
            if result is not None:
                self._send(client, {"req": req, "ok": True, **result})

    def _entry(self, message: dict[str, Any]) -> Entry:
        entry = self.entries.get(message["id"])
        if entry is None:
            raise RequestError("not_found", f"no such container: {message['id']}")
        return entry

    def op_hello(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        return {"version": protocol.VERSION, "pid": os.getpid()}

    def op_list(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        return {"containers": [e.public() for e in self.entries.values()]}

    def op_create(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any] | None:
        container_id = message["id"]
        if container_id in self.entries:
            raise RequestError("invalid_state", f"container {container_id} exists")
        spec = from_dict(ContainerSpec, message["spec"])
        entry = self._clone(container_id, spec, message["stdout"], message["stderr"])
        if message.get("start", True):
            self._release(entry, client, req)
            return None  # replied once execve has happened (or failed)
        return {"pid": entry.pid, "pid_start_time": entry.pid_start_time, "exec_error": None}

    def op_start(self, client: Client, req: int, message: dict[str, Any]) -> None:
        entry = self._entry(message)
        if entry.state != "created":
            raise RequestError("invalid_state", f"container {entry.id} is {entry.state}")
        self._release(entry, client, req)

    def op_kill(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(message)
        if entry.exit is not None:
            raise RequestError("invalid_state", f"container {entry.id} is not running")
        try:
            signal.pidfd_send_signal(entry.pidfd, int(message["signal"]))
        except ProcessLookupError as err:
            raise RequestError("invalid_state", f"container {entry.id} is not running") from err
        return {}

    def op_ack(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        entry = self.entries.get(message["id"])
        if entry is not None and entry.exit is not None:
            del self.entries[entry.id]
        return {}

    # -- launching ------------------------------------------------------
    def _clone(self, container_id: str, spec: ContainerSpec, stdout: str, stderr: str) -> Entry:
        opened: list[int] = []
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            out_fd = os.open(stdout, flags, 0o640)
            opened.append(out_fd)
            err_fd = os.open(stderr, flags, 0o640)
            opened.append(err_fd)
            in_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(in_fd)
            sync_read, sync_write = os.pipe2(os.O_CLOEXEC)
            opened += [sync_read, sync_write]
            error_read, error_write = os.pipe2(os.O_CLOEXEC)
            opened += [error_read, error_write]
            fds = child.ChildFds(sync_read, error_write, in_fd, out_fd, err_fd)
            namespaces = DEFAULT_NAMESPACES
            if spec.security.userns_host_id is not None:
                namespaces |= Namespace.NEWUSER
            flags_word = clone_flags(namespaces)
            pid, pidfd = libc.clone(lambda: child.run(spec, fds), flags_word)
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        try:
            devices_cgroup = self._prepare(container_id, spec, pid)
        except BaseException:
            # The child still waits for its go byte: kill it, reap it, forget it.
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
            for fd in opened + [pidfd]:
                os.close(fd)
            raise
        for fd in (out_fd, err_fd, in_fd, sync_read, error_write):
            os.close(fd)
        log.debug("cloned %s as pid %d with %s", container_id, pid, describe(flags_word))
        os.set_blocking(error_read, False)
        entry = Entry(
            id=container_id,
            pid=pid,
            pidfd=pidfd,
            pid_start_time=process_start_time(pid),
            sync_write=sync_write,
            error_read=error_read,
            devices_cgroup=devices_cgroup,
        )
        self.entries[container_id] = entry
        self.selector.register(pidfd, selectors.EVENT_READ, ("pidfd", entry))
        self.selector.register(error_read, selectors.EVENT_READ, ("error_pipe", entry))
        return entry

    def _prepare(self, container_id: str, spec: ContainerSpec, pid: int) -> str | None:
        """What the parent sets up while the child waits: id maps, cgroups."""
        host_id = spec.security.userns_host_id
        if host_id is not None:
            userns.write_maps(pid, host_id, USERNS_SIZE)
        if not devices.available():
            log.warning("no v1 devices cgroup: %s may open any device node", container_id)
            return None
        path = devices.create(container_id)
        try:
            devices.join(path, pid)
        except BaseException:
            devices.remove(path)
            raise
        return path

    def _release(self, entry: Entry, client: Client, req: int) -> None:
        """Send the go byte; the reply waits for the error pipe's verdict."""
        entry.pending = (client, req)
        entry.state = "running"
        entry.started_at = now_rfc3339()
        try:
            os.write(entry.sync_write, child.GO_BYTE)
        except BrokenPipeError:
            pass  # the child is already gone; the pidfd will say how
        os.close(entry.sync_write)
        entry.sync_write = -1

    def _read_error_pipe(self, entry: Entry) -> None:
        while True:
            try:
                data = os.read(entry.error_read, 4096)
            except BlockingIOError:
                return
            if not data:
                break
            entry.error_buffer += data
        self.selector.unregister(entry.error_read)
        os.close(entry.error_read)
        entry.error_read = -1
        entry.exec_error = child.parse_report(bytes(entry.error_buffer))
        if entry.pending is not None:
            client, req = entry.pending
            entry.pending = None
            self._send(
                client,
                {
                    "req": req,
                    "ok": True,
                    "pid": entry.pid,
                    "pid_start_time": entry.pid_start_time,
                    "started_at": entry.started_at,
                    "exec_error": entry.exec_error,
                },
            )

    def _reap(self, entry: Entry) -> None:
        if entry.error_read >= 0 and entry.sync_write < 0:
            # The child is dead, so every write end of its error pipe is
            # closed: this read cannot block, and the launch reply goes out
            # before the exit event.
            os.set_blocking(entry.error_read, True)
            self._read_error_pipe(entry)
        try:
            result = os.waitid(os.P_PIDFD, entry.pidfd, os.WEXITED)
        except ChildProcessError:
            result = None
        if result is None:
            return  # spurious wake-up: not exited yet
        self.selector.unregister(entry.pidfd)
        os.close(entry.pidfd)
        if entry.error_read >= 0:  # died before release: nothing to read for anyone
            self.selector.unregister(entry.error_read)
            os.close(entry.error_read)
            entry.error_read = -1
        if entry.sync_write >= 0:
            os.close(entry.sync_write)
            entry.sync_write = -1
        if entry.devices_cgroup is not None:
            try:
                devices.remove(entry.devices_cgroup)
            except OSError as err:
                log.warning("could not remove %s: %s", entry.devices_cgroup, err)
            entry.devices_cgroup = None
        status = exitstatus.from_waitid(result.si_code, result.si_status)
        entry.state = "exited"
        entry.exit = {
            "exit_code": status.exit_code,
            "signal": status.signal,
            "finished_at": now_rfc3339(),
        }
        self._broadcast({"event": "exit", "id": entry.id, **entry.exit})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.launcher")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s launcher[%(process)d] %(levelname)s %(message)s"
    )
    state_dir = os.path.abspath(args.state_dir)
    lock_fd = os.open(os.path.join(state_dir, "launcher.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            log.info("another launcher holds %s; exiting", state_dir)
            return 0
        raise
    path = os.path.join(state_dir, "launcher.sock")
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # the socket is the launcher's whole API: root only
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(64)
    log.info("listening on %s", path)
    try:
        Launcher(listener).serve_forever()
    finally:
        # Only unlink the socket we created, then let the lock go with us.
        os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
