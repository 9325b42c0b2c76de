"""The launcher's event loop: one thread, one ``selectors`` loop, and dispatch.

    Launcher            composes the rooms below and runs the loop
    ├── transport.py    the listener and the clients' sockets
    ├── ops.py          what each request does (one table of ops)
    ├── spawn.py        clone, fork for exec, cgroup join, release, error pipe
    ├── pool.py         children cloned ahead, filled when idle or after a claim
    ├── zygote.py       the small process that clones them, stopped here
    ├── sparenet.py     a network namespace made ahead, when the loop is idle
    ├── reaper.py       reap, accounting, cgroup removal after the turn's events
    ├── ptyio.py        pty masters and stdin pipes
    └── watch.py        inotify log index, timeout and output limits

Every fd in the selector carries a ``Ready`` (ready.py): the listening
socket, client connections, each child's pidfd (readable once it has
exited, pidfd_open(2)), each child's error pipe (EOF once execve
succeeded), pty masters, stdin pipes and the inotify fd.  Nothing here
blocks for long, so one launcher serves many concurrent launches: children
set themselves up in parallel while the loop goes on.  It is single-threaded
on purpose (docs/architecture.md): fork(2) for an exec and clone(2) are
only safe from a process with one thread.

Execs (runtime/nsexec.py) are entries too, of kind ``exec``: forked, not
cloned, and reaped the same way.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from typing import Any

from runtime import cgroups
from runtime.launcher import protocol, watch
from runtime.launcher.entry import Entry
from runtime.launcher.ops import Ops
from runtime.launcher.pool import Pool
from runtime.launcher.poollayers import PoolLayers
from runtime.launcher.ptyio import PtyIo
from runtime.launcher.ready import Source
from runtime.launcher.reaper import Reaper
from runtime.launcher.spawn import Spawner
from runtime.launcher.transport import Client, Transport
from runtime.launcher.zygote import Zygote
from runtime.security import devices

log = logging.getLogger("mydocker.launcher")

IDLE_EXIT_SECONDS = 5.0
#: Exits handled per turn of the loop before it looks for requests again.
REAPS_PER_TURN = 32


class Launcher:
    def __init__(
        self,
        listener: socket.socket,
        cgroup_manager: cgroups.Manager | None = None,
        devices_parent: str = devices.PARENT,
        pool_layers: PoolLayers | None = None,
        zygote: bool = True,
    ) -> None:
        """``pool_layers``: where the pool's overlay children keep their
        layer dirs (None: only the host image is pooled).  ``zygote``: the
        pool's children are cloned by a small process (zygote.py), started
        with the pool's first templates."""
        self.selector = selectors.DefaultSelector()
        self.entries: dict[str, Entry] = {}
        self.idle_since: float | None = time.monotonic()
        self.transport = Transport(listener, self.selector, self.handle)
        self.pty = PtyIo(self.selector)
        self.watch = watch.Watch(self.selector)
        self.spawner = Spawner(
            self.selector,
            self.entries,
            self.transport,
            self.pty,
            self.reap,
            cgroup_manager,
            devices_parent,
        )
        self.reaper = Reaper(
            self.selector,
            self.entries,
            self.pty,
            self.watch,
            self.spawner.read_error_pipe,
            cgroup_manager,
        )
        self.pool = Pool(
            self.selector,
            cgroup_manager,
            devices_parent,
            self.spawner.views,
            self.spawner.plumber,
            pool_layers,
            Zygote(self.selector) if zygote else None,
        )
        self.spawner.pool = self.pool
        self.ops = Ops(self.entries, self.spawner, self.pty, self.watch, self.pool)

    # -- the loop -------------------------------------------------------
    def serve_forever(self) -> None:
        try:
            self._loop()
        finally:
            self.pool.drain()
            if self.pool.zygote is not None:
                self.pool.zygote.stop()
            self.spawner.spare_net.close()

    def _loop(self) -> None:
        while True:
            # A pool short of children is filled after the turn's replies
            # and events went out: when a select found nothing to do, or to
            # replace a child claimed since (pool.py ``fill_due``).
            filling = self.pool.wants_fill()
            spare = self.spawner.spare_net.wants()  # sparenet.py: made when idle
            idle = 0 if spare else self._select_timeout()
            if filling:  # at once, unless a claim just took a child (pool.py)
                idle = min(idle, self.pool.fill_timeout())
            ready = self.selector.select(timeout=idle)
            self.turn(ready)
            self.watch.record()
            self.transport.flush_all()
            if self.pool.fill_due(idle=not ready):
                self.pool.fill_one()
            elif spare and not ready:
                self.spawner.spare_net.make()
            watch.enforce(self.entries.values())
            self.reaper.tidy()
            self.reaper.remove_parent_if_due()
            if self._idle_too_long():
                log.info("no client and no container for %.0fs; exiting", IDLE_EXIT_SECONDS)
                return

    def turn(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Handle what the selector found ready.

        Requests first, and at most REAPS_PER_TURN exits per turn: a burst
        of exits (a bulk kill) costs ≈ 1 ms each (cgroup counters and
        rmdir), and a request (the next batch of that kill, a create) should
        not wait behind all of them.  epoll is level-triggered, so a pidfd
        left over is ready again at the next select."""
        ready = sorted(ready, key=lambda item: item[0].data.source is not Source.CLIENT)
        reaps = 0
        for key, mask in ready:
            if not self._still_registered(key):
                continue
            source = key.data.source
            if source is Source.PIDFD:
                if reaps >= REAPS_PER_TURN:
                    continue
                reaps += 1
            key.data.handle(mask)

    def _still_registered(self, key: selectors.SelectorKey) -> bool:
        """A handler earlier in this turn may have unregistered (and closed)
        another ready fd: a pooled child's exit discards its channel, a
        client's hang-up its streams.  That fd's key is stale; handling it
        would touch a closed fd (epoll is level-triggered: anything still
        pending on a re-registered fd is reported again next turn)."""
        try:
            return self.selector.get_key(key.fileobj) is key
        except (KeyError, ValueError):
            return False

    def _select_timeout(self) -> float:
        """Wake up for the nearest deadline, and often while output is capped."""
        timeout = self.watch.timeout(self.entries.values(), 1.0)
        if self.reaper.untidy:
            timeout = min(timeout, 0.1)
        return self.reaper.linger_timeout(timeout)

    def _idle_too_long(self) -> bool:
        if self.transport.clients or self.entries or self.reaper.untidy:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        return time.monotonic() - self.idle_since > IDLE_EXIT_SECONDS

    # -- dispatch -------------------------------------------------------
    def handle(self, client: Client, message: dict[str, Any]) -> None:
        """Decode a request, run its op, send its reply (or its refusal)."""
        req = message.get("req", 0)
        try:
            op = protocol.decode_request(message)
            reply = self.ops.handler(op)(client, req, op)
        except protocol.RequestError as err:
            self.transport.reply(client, req, protocol.ErrorReply(err.kind, str(err)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.exception("op %s failed", message.get("op"))
            errno = err.errno if isinstance(err, OSError) else None
            failed = protocol.ErrorReply(protocol.ErrorKind.FAILED, str(err), errno)
            self.transport.reply(client, req, failed)
        else:
            if reply is not None:
                self.transport.reply(client, req, reply)

    def reap(self, entry: Entry) -> None:
        event = self.reaper.reap(entry)
        if event is not None:
            self.spawner.plumber.release(entry.id)  # its published ports are free again
            self.transport.broadcast(event)
