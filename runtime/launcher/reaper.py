"""The end of an entry in the launcher: reap, account, remove its cgroups.

    Reaper
    ├── reap              waitid on the pidfd, close our ends, the exit event
    ├── results           the cgroup's counters (containers); its removal waits
    │                     for ``tidy``
    ├── tidy              after the turn's exit events went out: the cgroups
    │                     and devices cgroups of the turn's exits removed, and
    │                     any still busy retried (each turn, ``REMOVE_RETRIES``);
    │                     their pid files removed (runtime/rundir.py)
    ├── note_if_unused    after a container's cgroup went: start the linger
    └── remove_parent_if_due   the loop's: once no container has had a
                          cgroup for PARENT_LINGER seconds, the parent goes

Exit statuses are kept in the entry until a client acknowledges them
(``ack``), so an API process that was away when a container exited learns
its real exit code when it reconnects.  The cgroups' rmdir (five
hierarchies) is not on the way of the exit event: the loop calls ``tidy``
once the turn's events are sent.  A launcher killed in between leaves
them to the next launcher's start-up clean-up, as it would leave a busy
one (startup.py).  The pidfd becomes readable when
the child dies (pidfd_open(2)); ``waitid(P_PIDFD, …)`` then cannot reach a
recycled pid.
"""

from __future__ import annotations

import logging
import os
import selectors
import time
from collections.abc import Callable

from runtime import cgroups, exitstatus, pids
from runtime.launcher.entry import EXITED, Entry
from runtime.launcher.messages import EntryKind, ExitEvent, ExitStatus, Results
from runtime.launcher.ptyio import PtyIo
from runtime.launcher.watch import Watch, truncate_logs
from runtime.security import devices
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.launcher")

#: How many loop turns (0.1 s apart) a cgroup still busy at exit is retried.
REMOVE_RETRIES = 600
#: How long the parent cgroups outlive the last container's.  Sequential
#: launches would otherwise rmdir the parent in every hierarchy at each exit
#: and mkdir it again at the next create (bench.ab, docs/performance.md).
PARENT_LINGER = 2.0


class Reaper:
    def __init__(
        self,
        selector: selectors.BaseSelector,
        entries: dict[str, Entry],
        pty: PtyIo,
        watch: Watch,
        read_error_pipe: Callable[[Entry], None],
        cgroup_manager: cgroups.Manager | None = None,
    ) -> None:
        self.selector = selector
        self.entries = entries
        self.pty = pty
        self.watch = watch
        self.read_error_pipe = read_error_pipe
        self.cgroups = cgroup_manager
        #: Container cgroups to remove (``tidy``), with the tries left.
        self.unremoved: dict[str, tuple[cgroups.Cgroup, int]] = {}
        #: Devices cgroups of reaped children, to remove (``tidy``).
        self.unremoved_devices: list[str] = []
        #: The pid files of children reaped this turn (runtime/rundir.py).
        self.unremoved_pidfiles: list[str] = []
        #: Since when no container has had a cgroup (None: one has, or the
        #: parent was removed since).
        self.unused_since: float | None = None
        self.clock = time.monotonic

    def reap(self, entry: Entry) -> ExitEvent | None:
        """The entry's exit event, once its child has exited (None before)."""
        process = entry.process
        if process.error_read >= 0 and process.sync_write < 0:
            # The child is dead, so every write end of its error pipe is
            # closed: this read cannot block, and the launch reply goes out
            # before the exit event.
            os.set_blocking(process.error_read, True)
            self.read_error_pipe(entry)
        try:
            result = os.waitid(os.P_PIDFD, process.pidfd, os.WEXITED)
        except ChildProcessError:
            result = None
        if result is None:
            return None  # spurious wake-up: not exited yet
        self._close_process(entry)
        self.pty.release(entry)
        self.watch.close_indexes(entry)
        status = exitstatus.from_waitid(result.si_code, result.si_status)
        entry.state = EXITED
        finished_at = now_rfc3339()
        results = self.results(entry) if entry.kind == EntryKind.CONTAINER else None
        entry.exit = ExitStatus(status.exit_code, status.signal, finished_at, results)
        return ExitEvent(entry.id, entry.kind, entry.exit)

    def _close_process(self, entry: Entry) -> None:
        """The pidfd, the pipes and the devices cgroup of a reaped child."""
        process = entry.process
        self.selector.unregister(process.pidfd)
        os.close(process.pidfd)
        if process.error_read >= 0:  # died before release: nothing to read for anyone
            self.selector.unregister(process.error_read)
            os.close(process.error_read)
            process.error_read = -1
        if process.sync_write >= 0:
            os.close(process.sync_write)
            process.sync_write = -1
        if process.devices_cgroup is not None:
            self.unremoved_devices.append(process.devices_cgroup)
            process.devices_cgroup = None
        if process.pidfile is not None:
            self.unremoved_pidfiles.append(process.pidfile)
            process.pidfile = None

    def results(self, entry: Entry) -> Results:
        """What the run took and why it ended; the cgroup goes once read."""
        limiting = entry.limiting
        wall = None if limiting.released_at is None else time.monotonic() - limiting.released_at
        self.watch.unwatch(entry)
        stats = cgroups.Stats()
        if limiting.cgroup is not None:
            try:
                stats = limiting.cgroup.stats(live=False)
            except OSError as err:
                log.warning("%s: reading the cgroup's counters failed: %s", entry.id, err)
            self.unremoved[entry.id] = (limiting.cgroup, REMOVE_RETRIES)
            limiting.cgroup = None
        if limiting.output_truncated and limiting.limits.output_bytes is not None:
            truncate_logs(entry.logs.paths, limiting.limits.output_bytes)
        return Results(
            # A bare SIGKILL/137 is not an OOM: only the cgroup's counter says so.
            oom_killed=None if stats.oom_kills is None else stats.oom_kills > 0,
            timed_out=limiting.timed_out,
            output_truncated=limiting.output_truncated,
            cpu_seconds=None if stats.cpu_seconds is None else round(stats.cpu_seconds, 6),
            memory_peak_bytes=stats.memory_peak_bytes,
            wall_seconds=None if wall is None else round(wall, 6),
        )

    def _in_use(self) -> bool:
        return bool(self.unremoved) or any(
            e.limiting.cgroup is not None for e in self.entries.values()
        )

    def note_if_unused(self) -> None:
        """A container's cgroup went: with none left, the linger starts."""
        if self.cgroups is not None and self.unused_since is None and not self._in_use():
            self.unused_since = self.clock()

    def remove_parent_if_due(self) -> None:
        """No container cgroup for PARENT_LINGER seconds: remove the parent
        too, so that a launcher killed later (SIGKILL runs no clean-up)
        leaves nothing behind (and the next launcher of any service sweeps
        an empty one, ``Manager.remove_empty_parents``).  The next create
        makes it again.  Tried once per idle spell (a warm pool's cgroups
        keep it busy); a container made meanwhile calls it off."""
        if self.unused_since is None or self.clock() < self.unused_since + PARENT_LINGER:
            return
        self.unused_since = None
        if self.cgroups is not None and not self._in_use():
            self.cgroups.remove_parent()

    def linger_timeout(self, default: float) -> float:
        """How long the loop may sleep before the parent is due for removal."""
        if self.unused_since is None:
            return default
        return max(0.0, min(default, self.unused_since + PARENT_LINGER - self.clock()))

    @property
    def untidy(self) -> bool:
        """Cgroups (and pid files) of reaped children still to remove."""
        return bool(self.unremoved or self.unremoved_devices or self.unremoved_pidfiles)

    def tidy(self) -> None:
        """Remove the cgroups of the children reaped so far.  PID 1 is gone,
        so its pid namespace is empty (pid_namespaces(7)), and rmdir(2)
        usually succeeds at once; a cgroup still busy (a process that
        joined from outside, an exec) gets one kill sweep per turn.  The
        pid files go too: the exit event is on its way, and a relaunch of
        the same id comes only after its ack, so after this."""
        for paths, remove in (
            (self.unremoved_pidfiles, pids.remove_pidfile),
            (self.unremoved_devices, devices.remove),
        ):
            for path in paths:
                try:
                    remove(path)
                except OSError as err:
                    log.warning("could not remove %s: %s", path, err)
            paths.clear()
        for name, (cgroup, tries) in list(self.unremoved.items()):
            if cgroup.remove() or (cgroup.kill_all(rounds=1) and cgroup.remove()):
                del self.unremoved[name]
                self.note_if_unused()
            elif tries <= 1:
                log.error("cgroup %s stays busy; leaving it", name)
                del self.unremoved[name]
            else:
                self.unremoved[name] = (cgroup, tries - 1)
