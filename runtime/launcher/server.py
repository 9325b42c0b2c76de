"""The launcher's event loop: clone, release, reap, report.

One thread, one ``selectors`` loop over: the listening socket, client
connections, each child's pidfd (readable once it has exited, pidfd_open(2))
and each child's error pipe (EOF once execve succeeded).  Nothing here blocks
for long, so one launcher serves many concurrent launches: children set
themselves up in parallel while the loop goes on.

Exit statuses are kept until a client acknowledges them (``ack``), so an API
process that was away when a container exited learns its real exit code when
it reconnects.

Interactive entries (runtime/terminal.py): the loop also reads each pty
master and appends what it reads to the entry's ``stdout.log``, so output is
drained whether or not anybody is attached, and it writes attach input
(``write``) into the master or the stdin pipe, buffering what the process
has not read yet.  Execs (runtime/nsexec.py) are entries too, of kind
``exec``: forked, not cloned, and reaped the same way.

Limits (docs/limits.md): each container gets a cgroup.  The launcher sends
the go byte first and joins the child to its cgroups while it builds its
root; the child waits for a second byte ("joined") before the first step
done on the command's behalf, so the command runs limited from its first
instruction (runtime/child.py, ``JOINED_BYTE``; an exec joins the cgroups of
the container's init, runtime/nsexec.py).  The loop's select
timeout doubles as the timer for ``timeout_seconds``; an inotify watch on
the log files (IN_MODIFY) wakes it to check the sizes against
``output_bytes``; either kills the whole cgroup.  At exit the
counters are read, then the cgroup is removed, and the exit event carries
the results (oom_killed, timed_out, ...).

Log times (runtime/logindex.py): the same inotify watch is on every log
file of every container and exec; when the loop sees a file grow it appends
``(size, now)`` to the file's ``.idx``.  After reading inotify the loop
leaves it alone for ``logindex.MIN_INTERVAL``, so a container that writes
all the time costs at most one wake-up and one record per file per 10 ms,
however often it writes.
"""

from __future__ import annotations

import argparse
import base64
import errno
import fcntl
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from runtime import cgroups, child, exitstatus, libc, logindex, nsexec, pids, terminal
from runtime.launcher import protocol
from runtime.namespaces import DEFAULT_NAMESPACES, Namespace, clone_flags, describe
from runtime.procfs import process_start_time
from runtime.security import devices, seccomp, userns
from runtime.spec import USERNS_SIZE, ContainerSpec, ExecSpec, Limits, from_dict
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.launcher")

IDLE_EXIT_SECONDS = 5.0
#: Attach input the process has not read yet; past this, ``write`` fails.
MAX_PENDING_INPUT = 1 << 20
READ_CHUNK = 1 << 16
#: How often the log sizes of containers with ``output_bytes`` are polled
#: when no inotify watch could be added (inotify(7): max_user_watches).
#: The logs are files the container writes directly (no pipe to count
#: through), so a writer overshoots by what it writes before the check;
#: the files are cut back to the cap after the kill.
OUTPUT_POLL_SECONDS = 0.05
#: How many loop turns (0.1 s apart) a cgroup still busy at exit is retried.
REMOVE_RETRIES = 600
#: inotify(7): struct inotify_event's fixed part (wd, mask, cookie, len).
INOTIFY_EVENT = struct.Struct("iIII")
#: Exits handled per turn of the loop before it looks for requests again.
REAPS_PER_TURN = 32
#: Output a client has not read; past this it is dropped (it reconnects and
#: reconciles), rather than the launcher holding ever more for it.
MAX_CLIENT_OUTPUT = 64 << 20


class RequestError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Client:
    sock: socket.socket
    reader: protocol.LineReader = field(default_factory=protocol.LineReader)
    alive: bool = True
    #: Replies and events the socket did not take yet (it is non-blocking).
    output: bytearray = field(default_factory=bytearray)


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
    #: The go byte went out at clone (the child builds its root while the
    #: launcher joins it to the cgroups); ``_release`` then sends only the
    #: joined byte.
    go_sent: bool = False
    kind: str = "container"
    #: The container a spec'd exec runs in (execs only).
    container: str | None = None
    spec: ContainerSpec | None = None
    # Interactive plumbing: the pty master (tty), the write end of the stdin
    # pipe (stdin without tty), the stdout log the master is drained into.
    master: int = -1
    #: With a tty, until the child has sent the pty's master over it.
    console: socket.socket | None = None
    pending_size: tuple[int, int] | None = None
    stdin_write: int = -1
    log_fd: int = -1
    master_readable: bool = False
    pending_input: bytearray = field(default_factory=bytearray)
    close_input: bool = False
    # Limits and accounting (containers only).
    limits: Limits = field(default_factory=Limits)
    cgroup: cgroups.Cgroup | None = None
    log_paths: tuple[str, str] = ("", "")
    released_at: float | None = None  # time.monotonic() at the go byte
    deadline: float | None = None  # time.monotonic() when timeout_seconds runs out
    timed_out: bool = False
    output_truncated: bool = False
    killed: bool = False
    watches: list[int] = field(default_factory=list)  # inotify wds on the logs
    #: The time index of each log file (runtime/logindex.py).
    indexes: list[logindex.IndexWriter] = field(default_factory=list)

    @property
    def input_fd(self) -> int:
        return self.master if self.master >= 0 else self.stdin_write

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "container": self.container,
            "pid": self.pid,
            "pid_start_time": self.pid_start_time,
            "state": self.state,
            "started_at": self.started_at,
            "exec_error": self.exec_error,
            "exit": self.exit,
        }


class Launcher:
    def __init__(
        self,
        listener: socket.socket,
        cgroup_manager: cgroups.Manager | None = None,
        devices_parent: str = devices.PARENT,
    ) -> None:
        self.listener = listener
        #: Where this launcher's devices cgroups live (runtime/security/devices.py).
        self.devices_parent = devices_parent
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        self.clients: list[Client] = []
        self.entries: dict[str, Entry] = {}
        self.idle_since: float | None = time.monotonic()
        self.cgroups = cgroup_manager
        self.unremoved: dict[str, tuple[cgroups.Cgroup, int]] = {}  # busy at exit: retry
        self.inotify_fd = -1  # created with the first entry
        self.watched: dict[int, logindex.IndexWriter] = {}  # inotify wd -> its log's index
        self.grown: set[logindex.IndexWriter] = set()  # seen growing, not recorded yet
        self.unwatched: dict[str, Entry] = {}  # no inotify watch: polled instead
        #: While set (time.monotonic()), the inotify fd is out of the selector.
        self.inotify_paused_until: float | None = None

    # -- the loop -------------------------------------------------------
    def serve_forever(self) -> None:
        while True:
            self._turn(self.selector.select(timeout=self._select_timeout()))
            self._record_output()
            self._flush_clients()
            self._enforce_limits()
            self._retry_removals()
            if self._idle_too_long():
                log.info("no client and no container for %.0fs; exiting", IDLE_EXIT_SECONDS)
                return

    def _turn(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Handle what the selector found ready.

        Requests first, and at most REAPS_PER_TURN exits per turn: a burst
        of exits (a bulk kill) costs ≈ 1 ms each (cgroup counters and
        rmdir), and a request (the next batch of that kill, a create) should
        not wait behind all of them.  epoll is level-triggered, so a pidfd
        left over is ready again at the next select."""
        ready = sorted(ready, key=lambda item: item[0].data[0] != "client")
        reaps = 0
        for key, mask in ready:
            kind, obj = key.data
            if kind == "pty":
                self._pty_ready(obj, mask)
            elif kind == "console":
                self._receive_master(obj)
            elif kind == "stdin":
                self._flush_input(obj)
            elif kind == "accept":
                self._accept()
            elif kind == "client":
                if mask & selectors.EVENT_WRITE and obj.alive:
                    self._flush_client(obj)
                if mask & selectors.EVENT_READ and obj.alive:
                    self._read_client(obj)
            elif kind == "error_pipe":
                self._read_error_pipe(obj)
            elif kind == "pidfd" and reaps < REAPS_PER_TURN:
                reaps += 1
                self._reap(obj)
            elif kind == "inotify":
                self._drain_inotify()

    def _select_timeout(self) -> float:
        """Wake up for the nearest deadline, and often while output is capped."""
        timeout = 1.0
        now = time.monotonic()
        for entry in self.entries.values():
            if entry.exit is not None or entry.killed:
                continue
            if entry.deadline is not None:
                timeout = min(timeout, max(entry.deadline - now, 0.0))
            capped = entry.limits.output_bytes is not None
            if capped and entry.released_at is not None and not entry.watches:
                timeout = min(timeout, OUTPUT_POLL_SECONDS)
        if self.unwatched:
            timeout = min(timeout, OUTPUT_POLL_SECONDS)
        if self.inotify_paused_until is not None:
            timeout = min(timeout, max(self.inotify_paused_until - now, 0.0))
        if self.unremoved:
            timeout = min(timeout, 0.1)
        return timeout

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for entry in self.entries.values():
            if entry.exit is not None or entry.killed or entry.released_at is None:
                continue
            if entry.deadline is not None and now >= entry.deadline:
                log.info("%s: timeout_seconds ran out; killing it", entry.id)
                entry.timed_out = True
                self._kill_all(entry)
            elif entry.limits.output_bytes is not None:
                size = _output_size(entry.log_paths)
                if size > entry.limits.output_bytes:
                    log.info("%s: output_bytes exceeded (%d bytes); killing it", entry.id, size)
                    entry.output_truncated = True
                    self._kill_all(entry)

    def _kill_all(self, entry: Entry) -> None:
        """SIGKILL the container's PID 1 and everything in its cgroup.

        pid_namespaces(7): when PID 1 of a namespace dies the kernel kills
        every other process in it, and none can fork any more; the cgroup
        sweep also catches what joined the container later (exec)."""
        entry.killed = True
        try:
            signal.pidfd_send_signal(entry.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if entry.cgroup is not None:
            entry.cgroup.kill_all(rounds=1)  # what is left goes at exit (_results)

    def _watch_output(self, entry: Entry) -> None:
        """Wake the loop on every write to the entry's logs: to date them
        (runtime/logindex.py) and to check ``output_bytes``.

        inotify(7) reports writes through any fd, the container's included,
        and coalesces identical unread events, so a flood of writes costs
        one wake-up per loop turn; the check follows the write at once
        instead of up to a poll period later."""
        entry.indexes = [logindex.IndexWriter(path) for path in entry.log_paths]
        try:
            if self.inotify_fd < 0:
                self.inotify_fd = libc.inotify_init1(libc.IN_NONBLOCK | libc.IN_CLOEXEC)
                self.selector.register(self.inotify_fd, selectors.EVENT_READ, ("inotify", None))
            for path, index in zip(entry.log_paths, entry.indexes, strict=True):
                wd = libc.inotify_add_watch(self.inotify_fd, path, libc.IN_MODIFY)
                entry.watches.append(wd)
                self.watched[wd] = index
        except OSError as err:
            # ENOSPC: inotify(7)'s max_user_watches is reached.
            log.warning("%s: no inotify watch (%s); polling its log sizes", entry.id, err)
            self._unwatch_output(entry)
            self.unwatched[entry.id] = entry
        # An exec runs already: what it wrote before the watch was added
        # gets its record on this loop turn.
        self.grown.update(entry.indexes)

    def _unwatch_output(self, entry: Entry) -> None:
        for wd in entry.watches:
            self.watched.pop(wd, None)
            try:
                libc.inotify_rm_watch(self.inotify_fd, wd)
            except OSError:
                pass  # EINVAL: the file is gone, and its watch went with it
        entry.watches.clear()

    def _drain_inotify(self) -> None:
        """Note which logs grew, then leave inotify unread for a while.

        Events that arrive meanwhile queue up in the kernel (identical ones
        merged), so the pause bounds the wake-ups and index records of a
        container that writes without pause; the record then carries the
        time of the first look after the pause."""
        while True:
            try:
                data = os.read(self.inotify_fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            for wd, mask in _inotify_events(data):
                if mask & libc.IN_Q_OVERFLOW:
                    self.grown.update(self.watched.values())  # lost events: look at all
                elif wd in self.watched:
                    self.grown.add(self.watched[wd])
        if self.inotify_paused_until is None:
            self.selector.unregister(self.inotify_fd)
            self.inotify_paused_until = time.monotonic() + logindex.MIN_INTERVAL

    def _record_output(self) -> None:
        """Index records for the logs seen growing; inotify back after its pause."""
        if self.grown or self.unwatched:
            now_ns = time.time_ns()
            for entry in self.unwatched.values():
                self.grown.update(entry.indexes)
            for index in self.grown:
                self._note(index, now_ns)
            self.grown.clear()
        paused = self.inotify_paused_until
        if paused is not None and time.monotonic() >= paused:
            self.inotify_paused_until = None
            self.selector.register(self.inotify_fd, selectors.EVENT_READ, ("inotify", None))

    @staticmethod
    def _note(index: logindex.IndexWriter, now_ns: int) -> None:
        try:
            index.note(now_ns)
        except OSError as err:  # ENOSPC: the log goes on, without times
            log.warning("%s: no more time records: %s", index.path, err)

    def _close_indexes(self, entry: Entry) -> None:
        """At exit, once the last output is in the logs: its final records."""
        now_ns = time.time_ns()
        for index in entry.indexes:
            self._note(index, now_ns)
            index.close()
            self.grown.discard(index)
        self._unwatch_output(entry)
        self.unwatched.pop(entry.id, None)

    def _remove_parent_if_unused(self) -> None:
        """No container cgroup left: remove the parent too, so that a launcher
        killed later (SIGKILL runs no clean-up) leaves nothing behind.  The
        next create makes it again."""
        if self.cgroups is None or self.unremoved:
            return
        if any(e.cgroup is not None for e in self.entries.values()):
            return
        self.cgroups.remove_parent()

    def _retry_removals(self) -> None:
        for name, (cgroup, tries) in list(self.unremoved.items()):
            if cgroup.kill_all(rounds=1) and cgroup.remove():
                del self.unremoved[name]
                self._remove_parent_if_unused()
            elif tries <= 1:
                log.error("cgroup %s stays busy; leaving it", name)
                del self.unremoved[name]
            else:
                self.unremoved[name] = (cgroup, tries - 1)

    def _idle_too_long(self) -> bool:
        if self.clients or self.entries or self.unremoved:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        return time.monotonic() - self.idle_since > IDLE_EXIT_SECONDS

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        # Never block on a client: the API's reader thread also sends (acks),
        # so a launcher blocked writing a burst of exit events into a full
        # socket, while the API is blocked writing acks into ours, would wait
        # for each other for ever.  Unsent output is kept and sent when the
        # socket is writable (unix(7): a stream socket's buffer is ~200 KiB).
        sock.setblocking(False)
        client = Client(sock)
        self.clients.append(client)
        self.selector.register(sock, selectors.EVENT_READ, ("client", client))

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(1 << 16)
        except BlockingIOError:
            return
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
        """Queue a message for the client.  A reply somebody waits for goes
        out at once (with what was queued before it); events, and replies to
        requests sent with ``req`` 0 (the API's acks, which nobody waits
        for), wait for the end of this turn of the loop (``_flush_clients``):
        one send(2), and one wake-up of the API's reader, for a burst of exits."""
        if not client.alive:
            return
        client.output += protocol.encode(message)
        if len(client.output) > MAX_CLIENT_OUTPUT:
            log.warning("dropping a client that has not read %d bytes", len(client.output))
            self._drop(client)
        elif message.get("req"):
            self._flush_client(client)

    def _flush_clients(self) -> None:
        for client in list(self.clients):
            if client.output:
                self._flush_client(client)

    def _flush_client(self, client: Client) -> None:
        """Send queued output until the socket would block; ask the selector
        for writability only while some is left."""
        try:
            while client.output:
                sent = client.sock.send(client.output)
                del client.output[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.output else 0)
        key = self.selector.get_map().get(client.sock)
        if key is not None and key.events != events:
            self.selector.modify(client.sock, events, ("client", client))

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
            reply = {"req": req, "ok": False, "kind": "failed", "error": str(err)}
            if isinstance(err, OSError) and err.errno is not None:
                reply["errno"] = err.errno  # lets the API tell a full disk (ENOSPC) apart
            self._send(client, reply)
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
        start = bool(message.get("start", True))
        entry = self._clone(
            container_id,
            spec,
            message["stdout"],
            message["stderr"],
            message.get("pidfile"),
            _size(message.get("tty_size")),
            go=start,
        )
        if start:
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

    def op_kill_many(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        """``kill`` for many containers in one request, with the same semantics
        for each (pidfd_send_signal(2) to its PID 1); one that is not running
        (unknown, already exited or not started) is listed, not an error.

        One syscall per container and no wait (≈ 50 µs each for SIGKILL on
        2 cores: the API sends batches of ``KILL_BATCH``, runtime/signalling.py);
        the exits arrive as pidfd events afterwards, reaped like any other."""
        signo = int(message["signal"])
        killed: list[str] = []
        not_running: list[str] = []
        for container_id in message["ids"]:
            entry = self.entries.get(container_id)
            if entry is None or entry.kind != "container" or entry.state != "running":
                not_running.append(container_id)
                continue
            try:
                signal.pidfd_send_signal(entry.pidfd, signo)
            except ProcessLookupError:
                not_running.append(container_id)  # exited, not reaped yet
                continue
            killed.append(container_id)
        return {"killed": killed, "not_running": not_running}

    def op_exec(self, client: Client, req: int, message: dict[str, Any]) -> None:
        container = self.entries.get(message["container"])
        if container is None or container.kind != "container":
            raise RequestError("not_found", f"no such container: {message['container']}")
        if container.state != "running" or container.exit is not None or container.spec is None:
            raise RequestError("invalid_state", f"container {container.id} is not running")
        if message["id"] in self.entries:
            raise RequestError("invalid_state", f"exec {message['id']} exists")
        spec = from_dict(ExecSpec, message["spec"])
        entry = self._fork_exec(
            message["id"],
            container,
            spec,
            message["stdout"],
            message["stderr"],
            _size(message.get("tty_size")),
        )
        entry.log_paths = (message["stdout"], message["stderr"])
        self._watch_output(entry)
        entry.pending = (client, req)
        entry.state = "running"
        entry.started_at = now_rfc3339()
        # replied once the exec'd process has called execve (or failed)

    def op_write(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        entry = self._interactive(message)
        data = base64.b64decode(message["data"], validate=True)
        if len(entry.pending_input) + len(data) > MAX_PENDING_INPUT:
            raise RequestError("invalid_state", f"{entry.id} is not reading its input")
        entry.pending_input += data
        self._flush_input(entry)
        return {}

    def op_close_stdin(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        """End of input: the pipe is closed once drained; a tty gets its EOF
        character (termios(3): VEOF, ^D, ends a read in canonical mode)."""
        entry = self._interactive(message)
        if entry.master >= 0 or entry.console is not None:
            entry.pending_input += b"\x04"
        else:
            entry.close_input = True
        self._flush_input(entry)
        return {}

    def op_resize(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(message)
        size = (int(message["rows"]), int(message["cols"]))
        if entry.master >= 0:
            terminal.set_winsize(entry.master, *size)
        elif entry.console is not None:
            entry.pending_size = size  # the master is on its way
        else:
            raise RequestError("invalid_state", f"{entry.id} has no tty")
        return {}

    def _interactive(self, message: dict[str, Any]) -> Entry:
        entry = self._entry(message)
        if entry.close_input:
            raise RequestError("invalid_state", f"the stdin of {entry.id} is closed")
        if entry.input_fd < 0 and entry.console is None:
            raise RequestError("invalid_state", f"{entry.id} has no stdin open (tty or stdin)")
        if entry.exit is not None:
            raise RequestError("invalid_state", f"{entry.id} is not running")
        return entry

    def op_stats(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        """Live counters of a running container's cgroup."""
        entry = self._entry(message)
        if entry.exit is not None or entry.state != "running" or entry.kind != "container":
            raise RequestError("invalid_state", f"container {entry.id} is not running")
        stats = entry.cgroup.stats() if entry.cgroup is not None else cgroups.Stats()
        return {
            "stats": {
                "memory_bytes": stats.memory_bytes,
                "memory_peak_bytes": stats.memory_peak_bytes,
                "cpu_seconds": stats.cpu_seconds,
                "pids": stats.pids,
            }
        }

    def op_ack(self, client: Client, req: int, message: dict[str, Any]) -> dict[str, Any]:
        entry = self.entries.get(message["id"])
        if entry is not None and entry.exit is not None:
            del self.entries[entry.id]
        return {}

    # -- launching ------------------------------------------------------
    def _open_stdio(self, tty: bool, stdin: bool, stdout: str, stderr: str) -> terminal.Stdio:
        """The child's fds 0/1/2 and the launcher's ends (see terminal.Stdio)."""
        opened: list[int] = []

        def keep(fd: int) -> int:
            opened.append(fd)
            return fd

        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            out_fd = keep(os.open(stdout, flags, 0o640))
            # A tty merges stderr into stdout, as docker's does; the file
            # still exists so that reading logs needs no special case.
            err_fd = keep(os.open(stderr, flags, 0o640))
            if tty:
                os.close(err_fd)
                opened.remove(err_fd)
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                console, child_console = keep(ours.detach()), keep(theirs.detach())
                return terminal.Stdio(
                    -1, -1, -1, child_console, console, -1, out_fd, (child_console,)
                )
            if stdin:
                in_fd, stdin_write = os.pipe2(os.O_CLOEXEC)
                keep(in_fd)
                keep(stdin_write)
                os.set_blocking(stdin_write, False)
            else:
                in_fd, stdin_write = keep(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)), -1
            return terminal.Stdio(
                in_fd, out_fd, err_fd, -1, -1, stdin_write, -1, (in_fd, out_fd, err_fd)
            )
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise

    def _clone(
        self,
        container_id: str,
        spec: ContainerSpec,
        stdout: str,
        stderr: str,
        pidfile: str | None = None,
        tty_size: tuple[int, int] | None = None,
        go: bool = False,
    ) -> Entry:
        cgroup = self._make_cgroup(container_id, spec.limits)
        try:
            entry = self._clone_into(
                container_id, spec, stdout, stderr, pidfile, cgroup, tty_size, go
            )
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        entry.limits = spec.limits
        entry.cgroup = cgroup
        entry.log_paths = (stdout, stderr)
        self._watch_output(entry)
        return entry

    def _make_cgroup(self, container_id: str, limits: Limits) -> cgroups.Cgroup | None:
        if self.cgroups is None:
            if limits.needs_cgroup:
                raise RequestError("failed", "cgroup: no cgroup controllers are mounted")
            return None
        try:
            return self.cgroups.create(container_id, limits)
        except cgroups.CgroupError as err:
            if limits.needs_cgroup:
                raise RequestError("failed", f"cgroup: {err}") from err
            log.warning("%s runs without a cgroup (no accounting): %s", container_id, err)
            return None

    def _clone_into(
        self,
        container_id: str,
        spec: ContainerSpec,
        stdout: str,
        stderr: str,
        pidfile: str | None,
        cgroup: cgroups.Cgroup | None,
        tty_size: tuple[int, int] | None = None,
        go: bool = False,
    ) -> Entry:
        """Clone the child, then join it to its cgroups.

        With ``go`` (a create that starts at once) the go byte goes out
        before the join, so the child builds its root while the launcher
        waits in the kernel for the join; the child then waits for the
        joined byte (``_release``) before it does anything on the command's
        behalf.  Without it (created, started later) the child waits for
        the go byte, and ``_release`` sends both bytes at start."""
        stdio = self._open_stdio(spec.tty, spec.stdin, stdout, stderr)
        opened: list[int] = []
        try:
            sync_read, sync_write = os.pipe2(os.O_CLOEXEC)
            opened += [sync_read, sync_write]
            error_read, error_write = os.pipe2(os.O_CLOEXEC)
            opened += [error_read, error_write]
            fds = child.ChildFds(
                sync_read,
                error_write,
                stdio.stdin,
                stdio.stdout,
                stdio.stderr,
                stdio.child_console,
                sync_write=sync_write,
            )
            namespaces = DEFAULT_NAMESPACES
            if spec.security.userns_host_id is not None:
                namespaces |= Namespace.NEWUSER
            flags_word = clone_flags(namespaces)
            pid, pidfd = libc.clone(lambda: child.run(spec, fds, tty_size), flags_word)
        except BaseException:
            for fd in opened:
                os.close(fd)
            self._close_stdio(stdio)
            raise
        start_time = process_start_time(pid)
        devices_cgroup: str | None = None
        go_out = False  # from here on the child may fail a set-up step and exit
        try:
            if pidfile is not None:
                # Before the go byte: if we die from here on, the API finds
                # the child by this file and kills it (runtime/pids.py).
                pids.write_pidfile(pidfile, pid, start_time)
            host_id = spec.security.userns_host_id
            if host_id is not None:
                # Before the go byte: the child's first mounts already act
                # as its mapped root (user_namespaces(7)).
                userns.write_maps(pid, host_id, USERNS_SIZE)
            if go:
                go_out = True
                os.write(sync_write, child.GO_BYTE)
            # The child waits for the joined byte before the first step done
            # on the command's behalf, so it runs none of the command yet,
            # and anything it forks later starts in the cgroups.
            devices_cgroup = self._join(container_id, pid, cgroup)
        except BaseException as err:
            if not (go_out and isinstance(err, Exception) and _has_exited(pidfd)):
                # The child is still waiting for a byte of ours: kill it,
                # reap it, forget it; the request fails with ``err``.
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
                for fd in opened + [pidfd]:
                    os.close(fd)
                self._close_stdio(stdio)
                raise
            # The child failed a setup step of its own before the join was
            # done (which is why the join failed): it ran none of the
            # command, and its report on the error pipe is the real error,
            # the one the launch answers with once released.
            log.warning("%s: the child exited during its cgroup join (%s)", container_id, err)
        for fd in (*stdio.child_fds, sync_read, error_write):
            os.close(fd)
        if log.isEnabledFor(logging.DEBUG):  # describe() is not free: only when it is shown
            log.debug("cloned %s as pid %d with %s", container_id, pid, describe(flags_word))
        entry = Entry(
            id=container_id,
            pid=pid,
            pidfd=pidfd,
            pid_start_time=start_time,
            sync_write=sync_write,
            error_read=error_read,
            devices_cgroup=devices_cgroup,
            go_sent=go,
            spec=spec,
        )
        self._adopt(entry, stdio)
        return entry

    @staticmethod
    def _close_stdio(stdio: terminal.Stdio) -> None:
        for fd in {*stdio.child_fds, stdio.console, stdio.stdin_write, stdio.log_fd}:
            if fd >= 0:
                os.close(fd)

    def _adopt(self, entry: Entry, stdio: terminal.Stdio) -> None:
        """Start watching a new child: its pidfd, error pipe and pty."""
        os.set_blocking(entry.error_read, False)
        entry.stdin_write, entry.log_fd = stdio.stdin_write, stdio.log_fd
        self.entries[entry.id] = entry
        self.selector.register(entry.pidfd, selectors.EVENT_READ, ("pidfd", entry))
        self.selector.register(entry.error_read, selectors.EVENT_READ, ("error_pipe", entry))
        if stdio.console >= 0:
            entry.console = socket.socket(fileno=stdio.console)
            self.selector.register(entry.console, selectors.EVENT_READ, ("console", entry))

    def _fork_exec(
        self,
        exec_id: str,
        container: Entry,
        spec: ExecSpec,
        stdout: str,
        stderr: str,
        tty_size: tuple[int, int] | None,
    ) -> Entry:
        assert container.spec is not None

        def alive() -> bool:
            try:
                signal.pidfd_send_signal(container.pidfd, 0)
            except ProcessLookupError:
                return False
            return True

        try:
            target = nsexec.open_target(container.pid, alive)
        except ProcessLookupError as err:
            raise RequestError("invalid_state", f"container {container.id} is not running") from err
        stdio = self._open_stdio(spec.tty, spec.stdin, stdout, stderr)
        opened: list[int] = []
        try:
            error_read, error_write = os.pipe2(os.O_CLOEXEC)
            opened += [error_read, error_write]
            fds = child.ChildFds(
                -1, error_write, stdio.stdin, stdio.stdout, stdio.stderr, stdio.child_console
            )
            # fork(2) is safe here: the launcher has a single thread.
            pid = os.fork()
            if pid == 0:
                nsexec.intermediate(target, container.spec, spec, fds, tty_size)
            pidfd = os.pidfd_open(pid)
        except BaseException:
            for fd in opened:
                os.close(fd)
            self._close_stdio(stdio)
            raise
        finally:
            target.close()
        for fd in (*stdio.child_fds, error_write):
            os.close(fd)
        log.debug("exec %s in %s as pid %d", exec_id, container.id, pid)
        entry = Entry(
            id=exec_id,
            pid=pid,
            pidfd=pidfd,
            pid_start_time=process_start_time(pid),
            sync_write=-1,
            error_read=error_read,
            kind="exec",
            container=container.id,
        )
        self._adopt(entry, stdio)
        return entry

    # -- interactive i/o ----------------------------------------------------
    def _receive_master(self, entry: Entry) -> None:
        """The child sent its pty's master (terminal.open_console), or died first."""
        sock = entry.console
        if sock is None:
            return
        try:
            master = terminal.receive_master(sock)
        except OSError:
            master = None
        self.selector.unregister(sock)
        sock.close()
        entry.console = None
        if master is None:
            return
        os.set_blocking(master, False)
        entry.master = master
        entry.master_readable = True
        if entry.pending_size is not None:
            try:
                terminal.set_winsize(master, *entry.pending_size)
            except OSError as err:
                log.warning("%s: resize: %s", entry.id, err)
            entry.pending_size = None
        self._update_pty_events(entry)
        self._flush_input(entry)

    def _pty_ready(self, entry: Entry, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush_input(entry)
        if mask & selectors.EVENT_READ and entry.master_readable:
            self._drain_pty(entry, once=True)

    def _drain_pty(self, entry: Entry, once: bool = False) -> None:
        """Copy what the master holds into the log; stop reading at hang-up."""
        while entry.master_readable:
            try:
                data = os.read(entry.master, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""  # EIO: no slave is open any more (pty(7))
            if not data:
                entry.master_readable = False
                self._update_pty_events(entry)
                return
            _write_all(entry.log_fd, data)
            if once:
                return

    def _update_pty_events(self, entry: Entry) -> None:
        events = (selectors.EVENT_READ if entry.master_readable else 0) | (
            selectors.EVENT_WRITE if entry.pending_input else 0
        )
        registered = entry.master in self.selector.get_map()
        if events and registered:
            self.selector.modify(entry.master, events, ("pty", entry))
        elif events:
            self.selector.register(entry.master, events, ("pty", entry))
        elif registered:
            self.selector.unregister(entry.master)

    def _flush_input(self, entry: Entry) -> None:
        fd = entry.input_fd
        if fd < 0:
            return  # a tty whose master has not arrived yet keeps the input
        while entry.pending_input:
            try:
                written = os.write(fd, entry.pending_input)
            except BlockingIOError:
                break
            except OSError:
                entry.pending_input.clear()  # EPIPE/EIO: nobody will read it
                break
            del entry.pending_input[:written]
        if entry.master >= 0:
            self._update_pty_events(entry)
            return
        registered = fd in self.selector.get_map()
        if entry.pending_input and not registered:
            self.selector.register(fd, selectors.EVENT_WRITE, ("stdin", entry))
        elif not entry.pending_input:
            if registered:
                self.selector.unregister(fd)
            if entry.close_input:
                os.close(fd)
                entry.stdin_write = -1

    def _release_io(self, entry: Entry) -> None:
        """At exit: the last output into the log, then close the launcher's ends."""
        if entry.console is not None:
            # The child is gone, so the socket holds the master or EOF: no wait.
            self._receive_master(entry)
        if entry.master >= 0:
            self._drain_pty(entry)
            if entry.master in self.selector.get_map():
                self.selector.unregister(entry.master)
            os.close(entry.master)
            entry.master = -1
        if entry.stdin_write >= 0:
            if entry.stdin_write in self.selector.get_map():
                self.selector.unregister(entry.stdin_write)
            os.close(entry.stdin_write)
            entry.stdin_write = -1
        if entry.log_fd >= 0:
            os.close(entry.log_fd)
            entry.log_fd = -1
        entry.pending_input.clear()

    def _join(self, container_id: str, pid: int, cgroup: cgroups.Cgroup | None) -> str | None:
        """Move the child into the container's cgroups and a devices cgroup.

        cgroups(7): writing a pid to ``cgroup.procs`` moves that process,
        and a process's children start in its cgroups, so whatever the
        child runs after this (the command, all it forks) is limited and
        counted.  Returns the devices cgroup's path (None without one)."""
        if cgroup is not None:
            try:
                cgroup.add(pid)
            except cgroups.CgroupError as err:
                raise RequestError("failed", f"cgroup: {err}") from err
        if not devices.available():
            log.warning("no v1 devices cgroup: %s may open any device node", container_id)
            return None
        path = devices.create(container_id, self.devices_parent)
        try:
            devices.join(path, pid)
        except BaseException:
            devices.remove(path)
            raise
        return path

    def _release(self, entry: Entry, client: Client, req: int) -> None:
        """Send the joined byte (and the go byte unless it went at clone);
        the reply waits for the error pipe's verdict."""
        entry.pending = (client, req)
        entry.state = "running"
        entry.started_at = now_rfc3339()
        entry.released_at = time.monotonic()
        if entry.limits.timeout_seconds is not None:
            entry.deadline = entry.released_at + entry.limits.timeout_seconds
        data = child.JOINED_BYTE if entry.go_sent else child.GO_BYTE + child.JOINED_BYTE
        try:
            os.write(entry.sync_write, data)
        except BrokenPipeError:
            pass  # the child is already gone; the pidfd will say how
        os.close(entry.sync_write)
        entry.sync_write = -1

    def _read_error_pipe(self, entry: Entry) -> None:
        if entry.error_read < 0:
            # ``_reap`` read it to the end earlier in this loop turn: a child
            # that died before it was registered (during its cgroup join) has
            # both fds ready at once, its pidfd first.
            return
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
        self._release_io(entry)
        self._close_indexes(entry)
        status = exitstatus.from_waitid(result.si_code, result.si_status)
        entry.state = "exited"
        entry.exit = {
            "exit_code": status.exit_code,
            "signal": status.signal,
            "finished_at": now_rfc3339(),
        }
        if entry.kind == "container":
            entry.exit["results"] = self._results(entry)
        self._broadcast({"event": "exit", "id": entry.id, "kind": entry.kind, **entry.exit})

    def _results(self, entry: Entry) -> dict[str, Any]:
        """What the run took and why it ended; the cgroup goes once read."""
        wall = None if entry.released_at is None else time.monotonic() - entry.released_at
        self._unwatch_output(entry)
        stats = cgroups.Stats()
        if entry.cgroup is not None:
            try:
                stats = entry.cgroup.stats(live=False)
            except OSError as err:
                log.warning("%s: reading the cgroup's counters failed: %s", entry.id, err)
            # PID 1 is gone, so the namespace is empty; processes that joined
            # from outside it (exec) may remain.
            if not (entry.cgroup.kill_all(rounds=1) and entry.cgroup.remove()):
                self.unremoved[entry.id] = (entry.cgroup, REMOVE_RETRIES)
            entry.cgroup = None
            self._remove_parent_if_unused()
        if entry.output_truncated and entry.limits.output_bytes is not None:
            _truncate_logs(entry.log_paths, entry.limits.output_bytes)
        return {
            # A bare SIGKILL/137 is not an OOM: only the cgroup's counter says so.
            "oom_killed": None if stats.oom_kills is None else stats.oom_kills > 0,
            "timed_out": entry.timed_out,
            "output_truncated": entry.output_truncated,
            "cpu_seconds": None if stats.cpu_seconds is None else round(stats.cpu_seconds, 6),
            "memory_peak_bytes": stats.memory_peak_bytes,
            "wall_seconds": None if wall is None else round(wall, 6),
        }


def _inotify_events(data: bytes) -> list[tuple[int, int]]:
    """``(wd, mask)`` of each struct inotify_event in a read(2) of inotify(7)."""
    events = []
    position = 0
    while position + INOTIFY_EVENT.size <= len(data):
        wd, mask, _cookie, name_length = INOTIFY_EVENT.unpack_from(data, position)
        events.append((wd, mask))
        position += INOTIFY_EVENT.size + name_length
    return events


def _has_exited(pidfd: int) -> bool:
    """Has the child exited (not reaped: WNOWAIT leaves that to ``_reap``)?"""
    try:
        return os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _output_size(paths: tuple[str, str]) -> int:
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except FileNotFoundError:
            pass
    return total


def _truncate_logs(paths: tuple[str, str], cap: int) -> None:
    """Cut stdout + stderr back to ``cap`` bytes in all.

    The order of writes across the two files is unknown, so each stream
    keeps at least half the cap when both overflowed, and a stream that
    stayed small keeps all of it (its last lines are often the error)."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except FileNotFoundError:
            sizes.append(0)
    out, err = sizes
    keep_err = min(err, max(cap // 2, cap - out))
    keep_out = min(out, cap - keep_err)
    for path, size, keep in ((paths[0], out, keep_out), (paths[1], err, keep_err)):
        if size > keep:
            os.truncate(path, keep)


def _size(value: Any) -> tuple[int, int] | None:
    """A message's ``tty_size`` (``[rows, cols]`` or null)."""
    if not value:
        return None
    return int(value[0]), int(value[1])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _cgroup_manager(state_dir: str) -> cgroups.Manager | None:
    """This machine's cgroup driver, after removing what a previous launcher left.

    We hold the state dir's lock, so no other launcher serves it: a
    container cgroup under our parent now belongs to a launcher that died,
    and its processes can be neither reaped nor reported; kill them."""
    try:
        manager = cgroups.manager(state_dir)
    except OSError as err:
        log.warning("cgroups unavailable (%s): no limits, no accounting", err)
        return None
    if manager is None:
        log.warning("no cgroup controllers mounted: no limits, no accounting")
        return None
    log.info("cgroup %s driver", manager.version)
    try:
        removed = manager.cleanup()
    except OSError as err:
        log.warning("removing leftover cgroups failed: %s", err)
        removed = []
    if removed:
        log.warning("removed %d leftover cgroups: %s", len(removed), ", ".join(removed))
    manager.remove_parent()
    swept = manager.remove_empty_parents()
    if swept:
        log.info("removed %d empty cgroup parents of other service instances", len(swept))
    return manager


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
        seccomp.warm()  # once here, instead of once in every child
    except Exception as err:  # noqa: BLE001 - each child reports it by step, as before
        log.warning("cannot compile the seccomp filter ahead: %s", err)
    cgroup_manager = _cgroup_manager(state_dir)
    devices_parent = devices.parent_for(state_dir)
    if devices.available():
        swept = devices.sweep(devices_parent)
        if swept:
            log.info("removed %d empty devices cgroups left by an earlier launcher", swept)
        devices.remove_empty_parents(keep=devices_parent)
    try:
        Launcher(listener, cgroup_manager, devices_parent).serve_forever()
    finally:
        # Only unlink the socket we created, then let the lock go with us.
        os.unlink(path)
        if cgroup_manager is not None:
            cgroup_manager.remove_parent()
        if devices.available():
            devices.remove_parent(devices_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
