"""The launcher's ops: what each request does (protocol.py has their wire form).

    Ops.handler(op) -> the method for a decoded request, from one table:
    hello, list, create, start, exec, kill, kill_many, write, close_stdin,
    resize, stats, ack, pool, connect, disconnect

A method returns the op's reply, or None when the reply comes later (a
launch is answered once execve has happened, spawn.py's error pipe), and
raises RequestError with an ErrorKind to refuse.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from runtime import cgroups
from runtime.launcher import protocol as p
from runtime.launcher.entry import CREATED, RUNNING, Entry
from runtime.launcher.pool import Pool
from runtime.launcher.poolkeys import Template
from runtime.launcher.ptyio import PtyIo
from runtime.launcher.spawn import Spawner
from runtime.launcher.stdio import Paths
from runtime.launcher.transport import Client
from runtime.launcher.watch import Watch
from runtime.network.attachment import Attachment
from runtime.spec import ContainerSpec, ExecSpec, from_dict

Handler = Callable[[Client, int, Any], p.Reply | None]


class Ops:
    def __init__(
        self,
        entries: dict[str, Entry],
        spawner: Spawner,
        pty: PtyIo,
        watch: Watch,
        warm: Pool | None = None,
    ) -> None:
        self.entries = entries
        self.spawner = spawner
        self.warm = warm
        self.pty = pty
        self.watch = watch
        self._table: dict[type[p.Request[Any]], Handler] = {
            p.Hello: self.hello,
            p.List: self.list,
            p.Create: self.create,
            p.Start: self.start,
            p.Exec: self.exec,
            p.Kill: self.kill,
            p.KillMany: self.kill_many,
            p.Write: self.write,
            p.CloseStdin: self.close_stdin,
            p.Resize: self.resize,
            p.Stats: self.stats,
            p.Ack: self.ack,
            p.Pool: self.pool,
            p.Connect: self.connect,
            p.Disconnect: self.disconnect,
        }

    def handler(self, op: p.Request[Any]) -> Handler:
        return self._table[type(op)]

    def _entry(self, entry_id: str) -> Entry:
        entry = self.entries.get(entry_id)
        if entry is None:
            raise p.RequestError(p.ErrorKind.NOT_FOUND, f"no such container: {entry_id}")
        return entry

    def hello(self, client: Client, req: int, op: p.Hello) -> p.HelloReply:
        return p.HelloReply(p.VERSION, os.getpid())

    def list(self, client: Client, req: int, op: p.List) -> p.ListReply:
        return p.ListReply(tuple(e.info() for e in self.entries.values()))

    def create(self, client: Client, req: int, op: p.Create) -> p.Launched | None:
        if op.id in self.entries:
            raise p.RequestError(p.ErrorKind.INVALID_STATE, f"container {op.id} exists")
        spec = from_dict(ContainerSpec, op.spec)
        paths = Paths(op.stdout, op.stderr)
        entry = self.spawner.clone(op.id, spec, paths, op.pidfile, op.tty_size, go=op.start)
        if op.start:
            # The joined byte first: the log watch (0.2 ms) is then set up
            # while the child finishes; what the command writes before it
            # is dated on this loop turn (Watch.watch), as an exec's is.
            self.spawner.release(entry, client, req)
            self.watch.watch(entry)
            return None  # replied once execve has happened (or failed)
        self.watch.watch(entry)
        process = entry.process
        return p.Launched(process.pid, process.pid_start_time, timeline=process.stamps.timeline())

    def start(self, client: Client, req: int, op: p.Start) -> None:
        entry = self._entry(op.id)
        if entry.state != CREATED:
            raise p.RequestError(
                p.ErrorKind.INVALID_STATE, f"container {entry.id} is {entry.state}"
            )
        self.spawner.release(entry, client, req)

    def exec(self, client: Client, req: int, op: p.Exec) -> None:
        container = self.entries.get(op.container)
        if container is None or container.kind != p.EntryKind.CONTAINER:
            raise p.RequestError(p.ErrorKind.NOT_FOUND, f"no such container: {op.container}")
        if container.state != RUNNING or container.exit is not None or container.spec is None:
            raise p.RequestError(
                p.ErrorKind.INVALID_STATE, f"container {container.id} is not running"
            )
        if op.id in self.entries:
            raise p.RequestError(p.ErrorKind.INVALID_STATE, f"exec {op.id} exists")
        spec = from_dict(ExecSpec, op.spec)
        paths = Paths(op.stdout, op.stderr)
        entry = self.spawner.fork_exec(op.id, container, spec, paths, op.tty_size)
        self.watch.watch(entry)
        self.spawner.started(entry, client, req)
        # replied once the exec'd process has called execve (or failed)

    def _alive(self, entry_id: str) -> Entry:
        entry = self._entry(entry_id)
        if entry.exit is not None or entry.kind != p.EntryKind.CONTAINER:
            raise p.RequestError(p.ErrorKind.INVALID_STATE, f"container {entry.id} is not running")
        return entry

    def connect(self, client: Client, req: int, op: p.Connect) -> p.Done:
        """One more network in a created or running container's namespace."""
        entry = self._alive(op.id)
        self.spawner.plumber.hotplug(entry.process.pid, from_dict(Attachment, op.attachment))
        return p.Done()

    def disconnect(self, client: Client, req: int, op: p.Disconnect) -> p.Done:
        self._alive(op.id)
        self.spawner.plumber.unplug(op.veth)
        return p.Done()

    def kill(self, client: Client, req: int, op: p.Kill) -> p.Done:
        entry = self._entry(op.id)
        if entry.exit is not None:
            raise p.RequestError(p.ErrorKind.INVALID_STATE, f"container {entry.id} is not running")
        try:
            signal.pidfd_send_signal(entry.process.pidfd, op.signal)
        except ProcessLookupError as err:
            raise p.RequestError(
                p.ErrorKind.INVALID_STATE, f"container {entry.id} is not running"
            ) from err
        return p.Done()

    def kill_many(self, client: Client, req: int, op: p.KillMany) -> p.KillManyReply:
        """``kill`` for many containers in one request, with the same semantics
        for each (pidfd_send_signal(2) to its PID 1); one that is not running
        (unknown, already exited or not started) is listed, not an error.

        One syscall per container and no wait (≈ 50 µs each for SIGKILL on
        2 cores: the API sends batches of ``KILL_BATCH``, runtime/signalling.py);
        the exits arrive as pidfd events afterwards, reaped like any other."""
        killed: list[str] = []
        not_running: list[str] = []
        for container_id in op.ids:
            entry = self.entries.get(container_id)
            if entry is None or entry.kind != p.EntryKind.CONTAINER or entry.state != RUNNING:
                not_running.append(container_id)
                continue
            try:
                signal.pidfd_send_signal(entry.process.pidfd, op.signal)
            except ProcessLookupError:
                not_running.append(container_id)  # exited, not reaped yet
                continue
            killed.append(container_id)
        return p.KillManyReply(tuple(killed), tuple(not_running))

    def write(self, client: Client, req: int, op: p.Write) -> p.Done:
        self.pty.write(self._entry(op.id), op.data)
        return p.Done()

    def close_stdin(self, client: Client, req: int, op: p.CloseStdin) -> p.Done:
        self.pty.close_stdin(self._entry(op.id))
        return p.Done()

    def resize(self, client: Client, req: int, op: p.Resize) -> p.Done:
        self.pty.resize(self._entry(op.id), op.rows, op.cols)
        return p.Done()

    def stats(self, client: Client, req: int, op: p.Stats) -> p.StatsReply:
        """Live counters of a running container's cgroup."""
        entry = self._entry(op.id)
        if entry.exit is not None or entry.state != RUNNING or entry.kind != p.EntryKind.CONTAINER:
            raise p.RequestError(p.ErrorKind.INVALID_STATE, f"container {entry.id} is not running")
        cgroup = entry.limiting.cgroup
        stats = cgroup.stats() if cgroup is not None else cgroups.Stats()
        return p.StatsReply(
            stats.memory_bytes, stats.memory_peak_bytes, stats.cpu_seconds, stats.pids
        )

    def pool(self, client: Client, req: int, op: p.Pool) -> p.PoolReply:
        """Configure the warm pool, then say how it stands."""
        if self.warm is None:
            return p.PoolReply(0, 0, 0, 0)
        if op.templates is not None:
            self.warm.configure(
                [Template(from_dict(ContainerSpec, t.spec), t.size) for t in op.templates]
            )
        return self.warm.stats()

    def ack(self, client: Client, req: int, op: p.Ack) -> p.Done:
        entry = self.entries.get(op.id)
        if entry is not None and entry.exit is not None:
            del self.entries[entry.id]
        return p.Done()
