"""How the launcher starts its children: clone a container, fork an exec.

    Spawner
    ├── clone        stdio, sync + error pipes, clone(2), id maps, go byte,
    │                pidfile, lo, cgroup made and joined -> a new Entry, adopted
    ├── _cloned      the clone(2) itself: by the pool's zygote once it is
    │                ready (zygote.py, the cgroup made meanwhile), else here
    ├── _claim       or a warm child of the pool (pool.py): its cgroup adopted,
    │                pidfile, the spec and stdio fds on its channel
    ├── fork_exec    an exec: fork, then runtime/nsexec.py joins the container
    ├── join         the child into its cgroups and a devices cgroup
    ├── release      the joined byte (and the go byte unless it went at clone)
    └── error pipe   EOF after execve, or the failed step's report -> the reply
    Stamps (runtime/launchtrace.py): received, cloned, go_sent, cgroup_joined,
    joined_sent, execd, on the Process; the reply carries them as a timeline
    open_stdio / close_stdio   the child's fds 0/1/2 and the launcher's ends

Limits (docs/limits.md): each container gets a cgroup.  The launcher sends
the go byte first and makes the cgroups and joins the child to them while
it builds its root; the child waits for a second byte ("joined") before the first step
done on the command's behalf, so the command runs limited from its first
instruction (runtime/child.py, ``JOINED_BYTE``; an exec joins the cgroups
of the container's init, runtime/nsexec.py).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import stat
import time
from collections.abc import Callable

from runtime import cgroups, child, libc, nsexec, pids, terminal
from runtime.images.viewtrees import ViewTrees, shareable
from runtime.launcher import claim, pool, zygote
from runtime.launcher.entry import RUNNING, Entry, Process
from runtime.launcher.plumbing import Plumber
from runtime.launcher.protocol import EntryKind, ErrorKind, ExecError, Launched, RequestError
from runtime.launcher.ptyio import PtyIo
from runtime.launcher.ready import Ready, Source
from runtime.launcher.sparenet import SpareNet
from runtime.launcher.stdio import Paths, close_stdio, open_stdio
from runtime.launcher.transport import Client, Transport
from runtime.launchtrace import Stamps
from runtime.namespaces import (
    DEFAULT_NAMESPACES,
    HOST_SHAREABLE,
    Namespace,
    clone_flags,
    describe,
)
from runtime.network import netlink
from runtime.network.attachment import HOST
from runtime.options import Tuning
from runtime.procfs import process_start_time
from runtime.security import devices, seccomp, userns
from runtime.spec import USERNS_SIZE, ContainerSpec, ExecSpec, Limits
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.launcher")


class _Unmade:
    """The container's cgroup is not made yet (``_prepare`` makes it)."""


UNMADE = _Unmade()


class Spawner:
    def __init__(
        self,
        selector: selectors.BaseSelector,
        entries: dict[str, Entry],
        transport: Transport,
        pty: PtyIo,
        on_exit: Callable[[Entry], None],
        cgroup_manager: cgroups.Manager | None = None,
        devices_parent: str = devices.PARENT,
        plumber: Plumber | None = None,
    ) -> None:
        self.selector = selector
        #: The containers' veths and held ports (runtime/launcher/plumbing.py).
        self.plumber = plumber if plumber is not None else Plumber()
        self.entries = entries
        self.transport = transport
        self.pty = pty
        self.on_exit = on_exit
        self.cgroups = cgroup_manager
        #: Where this launcher's devices cgroups live (runtime/security/devices.py).
        self.devices_parent = devices_parent
        #: The host image's view, prepared once and copied per container.
        self.views = ViewTrees()
        #: A network namespace made ahead when the loop is idle (sparenet.py).
        self.spare_net = SpareNet()
        #: Children cloned ahead (pool.py); set by the launcher, None: always cold.
        self.pool: pool.Pool | None = None

    # -- containers -----------------------------------------------------
    def clone(
        self,
        container_id: str,
        spec: ContainerSpec,
        paths: Paths,
        pidfile: str | None = None,
        tty_size: tuple[int, int] | None = None,
        go: bool = False,
    ) -> Entry:
        stamps = Stamps()
        stamps.stamp("received")
        if spec.network is not None and spec.network.ports:
            self.plumber.hold_ports(container_id, spec.network)  # a clash: nothing made yet
        try:
            warm = self.pool.claim(spec) if self.pool is not None else None
            if warm is not None:
                claimed = self._claim(
                    container_id, spec, paths, pidfile, tty_size, go, warm, stamps
                )
                if claimed is not None:
                    return claimed
            try:
                entry = self._clone_into(container_id, spec, paths, pidfile, tty_size, go, stamps)
            except zygote.Lost:
                # It died with the clone in flight (a child of its may hold
                # the fds, closed now: it reads EOF and exits): once more,
                # here, with fresh ones.
                entry = self._clone_into(container_id, spec, paths, pidfile, tty_size, go, stamps)
        except BaseException:
            self.plumber.release(container_id)
            raise
        entry.limiting.limits = spec.limits
        entry.logs.paths = (paths.stdout, paths.stderr)
        return entry

    def _claim(
        self,
        container_id: str,
        spec: ContainerSpec,
        paths: Paths,
        pidfile: str | None,
        tty_size: tuple[int, int] | None,
        go: bool,
        warm: pool.Warm,
        stamps: Stamps,
    ) -> Entry | None:
        """A pooled child made the container (runtime/launcher/claim.py);
        None when it cannot be used: the cold path."""
        assert self.pool is not None
        handed = claim.hand_over(
            self.pool,
            self.cgroups,
            warm,
            claim.Claim(container_id, spec, pidfile, tty_size, go, warm.parked is not None),
            paths,
            stamps,
        )
        if handed is None:
            return None
        process, stdio = handed
        process.after_joined = claim.plug(self.pool, self.plumber, warm, spec, stdio, go)
        entry = Entry(container_id, process, spec=spec)
        self._adopt(entry, stdio)
        entry.limiting.limits = spec.limits
        entry.limiting.cgroup = warm.cgroup
        entry.logs.paths = (paths.stdout, paths.stderr)
        return entry

    def _clone_into(
        self,
        container_id: str,
        spec: ContainerSpec,
        paths: Paths,
        pidfile: str | None,
        tty_size: tuple[int, int] | None = None,
        go: bool = False,
        stamps: Stamps | None = None,
    ) -> Entry:
        """Clone the child, then make its cgroups and join it to them.

        With ``go`` (a create that starts at once) the go byte goes out
        before the join, so the child builds its root while the launcher
        waits in the kernel for the join; the child then waits for the
        joined byte (``release``) before it does anything on the command's
        behalf.  Without it (created, started later) the child waits for
        the go byte, and ``release`` sends both bytes at start."""
        stamps = stamps if stamps is not None else Stamps()
        stdio = open_stdio(spec.tty, spec.stdin, paths, discard=spec.options.log_driver == "none")
        opened: list[int] = []
        view = None
        made: cgroups.Cgroup | None | _Unmade = UNMADE
        try:
            if spec.rootfs is not None and spec.rootfs.lower is None:
                view = self.views.copies(spec.rootfs, whole=shareable(spec))
                opened += view.values() if view is not None else ()
            netns = self.spare_net.take(spec)  # -1: the clone makes one
            opened += [netns] if netns >= 0 else []
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
                view=view,
                netns=netns,
            )
            flags_word = _clone_flags(spec, spare_net=netns >= 0)
            pid, pidfd, made = self._cloned(container_id, spec, fds, tty_size, flags_word)
            stamps.stamp("cloned")
        except BaseException:
            for fd in opened:
                os.close(fd)
            close_stdio(stdio)
            raise
        # The start time is read in ``_prepare``, after the go byte.
        process = Process(pid, pidfd, None, sync_write, error_read, go_sent=go, stamps=stamps)
        try:
            process.devices_cgroup, cgroup = self._prepare(
                container_id, spec, process, pidfile, lo_up=netns >= 0, made=made
            )
        except BaseException:
            for fd in opened + [pidfd]:
                os.close(fd)
            close_stdio(stdio)
            raise
        for fd in (*stdio.child_fds, sync_read, error_write, *(view or {}).values()):
            os.close(fd)
        if netns >= 0:
            os.close(netns)
        if log.isEnabledFor(logging.DEBUG):  # describe() is not free: only when it is shown
            log.debug("cloned %s as pid %d with %s", container_id, pid, describe(flags_word))
        entry = Entry(container_id, process, spec=spec)
        entry.limiting.cgroup = cgroup
        self._adopt(entry, stdio)
        return entry

    def _cloned(
        self,
        container_id: str,
        spec: ContainerSpec,
        fds: child.ChildFds,
        tty_size: tuple[int, int] | None,
        flags: int,
    ) -> tuple[int, int, cgroups.Cgroup | None | _Unmade]:
        """clone(2) of ``child.run``: the pid, its pidfd, and the container's
        cgroup if it is made already.  The pool's zygote clones it when it
        is ready (zygote.py, ``send_cold``): a small idle process's clone
        copies fewer pages, and the launcher's own pages are then not
        shared copy-on-write with a child, so its next writes take no
        faults (docs/performance-log.md, "The launcher's, the zygote's and
        the containers' CPU under load"); the launcher makes the cgroup meanwhile.  Else
        here, as before the zygote, and ``_prepare`` makes the cgroup."""
        cloner = self.pool.zygote if self.pool is not None else None
        if cloner is not None and cloner.ready:
            try:
                ticket = cloner.send_cold(spec, fds, tty_size, flags)
            except zygote.Lost:
                pass  # nothing went out: cloned here
            else:
                try:
                    made = make_cgroup(self.cgroups, container_id, spec.limits, spec.options.tuning)
                except BaseException:
                    cloner.discard(ticket)
                    raise
                try:
                    pid, pidfd = cloner.wait(ticket)
                except BaseException:
                    if made is not None:
                        made.remove()
                    raise
                return pid, pidfd, made
        seccomp.prepare(spec.security)  # built here once per capability set, inherited
        prepared = child.prepare(spec, fds, tty_size)  # the child's, ready (child.py)
        pid, pidfd = libc.clone(lambda: child.run(spec, fds, tty_size, prepared), flags)
        return pid, pidfd, UNMADE

    def _prepare(
        self,
        container_id: str,
        spec: ContainerSpec,
        process: Process,
        pidfile: str | None,
        lo_up: bool = False,
        made: cgroups.Cgroup | None | _Unmade = UNMADE,
    ) -> tuple[str | None, cgroups.Cgroup | None]:
        """What must happen between clone and release: the id maps, the go
        byte (with ``go_sent``), the pid file, the cgroups and the join.
        Returns the devices cgroup and the container's cgroup; raises (the
        child killed and reaped, its cgroup removed) when the child is still
        waiting for a byte of ours."""
        go_out = False  # from here on the child may fail a set-up step and exit
        cgroup = None if isinstance(made, _Unmade) else made
        try:
            host_id = spec.security.userns_host_id
            if host_id is not None:
                # Before the go byte: the child's first mounts already act
                # as its mapped root (user_namespaces(7)).
                userns.write_maps(process.pid, host_id, USERNS_SIZE)
            if process.go_sent:
                go_out = True
                os.write(process.sync_write, child.GO_BYTE)
                process.stamps.stamp("go_sent")
            _record(process, pidfile)
            # After the go byte: lo, the veth and eth0's set-up overlap the
            # child's mounts; the command needs them only after the joined byte.
            self._plug(process, spec, lo_up)
            # After the go byte too: a mkdir in every hierarchy and the
            # limits written (0.3-0.8 ms) while the child builds its root,
            # which needs no cgroup; they are in place before the join.
            if isinstance(made, _Unmade):
                cgroup = make_cgroup(self.cgroups, container_id, spec.limits, spec.options.tuning)
            # The child waits for the joined byte before the first step done
            # on the command's behalf, so it runs none of the command yet,
            # and anything it forks later starts in the cgroups.
            devices_cgroup = self.join(container_id, process.pid, cgroup, _device_rules(spec))
            process.stamps.stamp("cgroup_joined")
            return devices_cgroup, cgroup
        except BaseException as err:
            if not (go_out and isinstance(err, Exception) and _has_exited(process.pidfd)):
                # The child is still waiting for a byte of ours: kill it,
                # reap it, forget it; the request fails with ``err``.
                signal.pidfd_send_signal(process.pidfd, signal.SIGKILL)
                os.waitid(os.P_PIDFD, process.pidfd, os.WEXITED)
                if process.pidfile is not None:
                    pids.remove_pidfile(process.pidfile)
                if cgroup is not None:
                    cgroup.remove()
                raise
            # The child failed a setup step of its own before the join was
            # done (which is why the join failed): it ran none of the
            # command, and its report on the error pipe is the real error,
            # the one the launch answers with once released.
            log.warning("%s: the child exited during its cgroup join (%s)", container_id, err)
            return None, cgroup

    def _plug(self, process: Process, spec: ContainerSpec, lo_up: bool = False) -> None:
        """Before the joined byte: lo is up (``lo_up``: it already is, in a
        namespace made ahead, sparenet.py) and eth0 (and eth1… of further
        networks) ready before the command runs (docs/networking.md); the
        child itself does nothing for either."""
        if not lo_up and (spec.network is None or spec.network.mode != HOST):
            loopback_up(process.pidfd)
        pid = process.pid
        if spec.network is not None and spec.network.connected:
            self.plumber.plug(pid, spec.network)
        for extra in spec.endpoints:  # connected while it was created or stopped
            if extra.connected:
                self.plumber.hotplug(pid, extra)

    def join(
        self,
        container_id: str,
        pid: int,
        cgroup: cgroups.Cgroup | None,
        extra_rules: tuple[str, ...] = (),
    ) -> str | None:
        """Move the child into the container's cgroups and a devices cgroup.

        cgroups(7): writing a pid to ``cgroup.procs`` moves that process,
        and a process's children start in its cgroups, so whatever the
        child runs after this (the command, all it forks) is limited and
        counted.  Returns the devices cgroup's path (None without one)."""
        if cgroup is not None:
            try:
                cgroup.add(pid)
            except cgroups.CgroupError as err:
                raise RequestError(ErrorKind.FAILED, f"cgroup: {err}") from err
        if not devices.available():
            log.warning("no v1 devices cgroup: %s may open any device node", container_id)
            return None
        path = devices.create(container_id, self.devices_parent, extra=extra_rules)
        try:
            devices.join(path, pid)
        except BaseException:
            devices.remove(path)
            raise
        return path

    def _adopt(self, entry: Entry, stdio: terminal.Stdio) -> None:
        """Start watching a new child: its pidfd, error pipe and pty."""
        process = entry.process
        os.set_blocking(process.error_read, False)
        entry.io.stdin_write, entry.io.log_fd = stdio.stdin_write, stdio.log_fd
        self.entries[entry.id] = entry
        exited = Ready(Source.PIDFD, lambda mask: self.on_exit(entry))
        self.selector.register(process.pidfd, selectors.EVENT_READ, exited)
        verdict = Ready(Source.ERROR_PIPE, lambda mask: self.read_error_pipe(entry))
        self.selector.register(process.error_read, selectors.EVENT_READ, verdict)
        if stdio.console >= 0:
            self.pty.adopt_console(entry, stdio.console)

    # -- execs ----------------------------------------------------------
    def fork_exec(
        self,
        exec_id: str,
        container: Entry,
        spec: ExecSpec,
        paths: Paths,
        tty_size: tuple[int, int] | None,
    ) -> Entry:
        assert container.spec is not None

        def alive() -> bool:
            try:
                signal.pidfd_send_signal(container.process.pidfd, 0)
            except ProcessLookupError:
                return False
            return True

        try:
            target = nsexec.open_target(container.process.pid, alive)
        except ProcessLookupError as err:
            raise RequestError(
                ErrorKind.INVALID_STATE, f"container {container.id} is not running"
            ) from err
        stdio = open_stdio(spec.tty, spec.stdin, paths)
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
            close_stdio(stdio)
            raise
        finally:
            target.close()
        for fd in (*stdio.child_fds, error_write):
            os.close(fd)
        log.debug("exec %s in %s as pid %d", exec_id, container.id, pid)
        process = Process(pid, pidfd, process_start_time(pid), -1, error_read)
        entry = Entry(exec_id, process, kind=EntryKind.EXEC, container=container.id)
        self._adopt(entry, stdio)
        entry.logs.paths = (paths.stdout, paths.stderr)
        return entry

    # -- release and verdict ----------------------------------------------
    def release(self, entry: Entry, client: Client, req: int) -> None:
        """Send the joined byte (and the go byte unless it went at clone);
        the reply waits for the error pipe's verdict."""
        self.started(entry, client, req)
        limiting = entry.limiting
        limiting.released_at = time.monotonic()
        if limiting.limits.timeout_seconds is not None:
            limiting.deadline = limiting.released_at + limiting.limits.timeout_seconds
        process = entry.process
        if not process.go_sent:
            process.stamps.restart()  # a start: this op's stamps only
        data = child.JOINED_BYTE if process.go_sent else child.GO_BYTE + child.JOINED_BYTE
        try:
            os.write(process.sync_write, data)
        except BrokenPipeError:
            pass  # the child is already gone; the pidfd will say how
        if not process.go_sent:
            process.stamps.stamp("go_sent")
        process.stamps.stamp("joined_sent")
        os.close(process.sync_write)
        process.sync_write = -1
        after, process.after_joined = process.after_joined, None
        if after is not None:
            after()

    @staticmethod
    def started(entry: Entry, client: Client, req: int) -> None:
        """Running from now; ``req`` is answered once execve has happened."""
        entry.pending = (client, req)
        entry.state = RUNNING
        entry.started_at = now_rfc3339()

    def read_error_pipe(self, entry: Entry) -> None:
        process = entry.process
        if process.error_read < 0:
            # ``reap`` read it to the end earlier in this loop turn: a child
            # that died before it was registered (during its cgroup join) has
            # both fds ready at once, its pidfd first.
            return
        while True:
            try:
                data = os.read(process.error_read, 4096)
            except BlockingIOError:
                return
            if not data:
                break
            process.error_buffer += data
        process.stamps.stamp("execd")
        self.selector.unregister(process.error_read)
        os.close(process.error_read)
        process.error_read = -1
        entry.exec_error = ExecError.from_wire(child.parse_report(bytes(process.error_buffer)))
        if entry.pending is not None:
            client, req = entry.pending
            entry.pending = None
            # An exec's reply has no timeline: only containers are traced.
            timeline = process.stamps.timeline() if entry.kind == EntryKind.CONTAINER else None
            reply = Launched(
                process.pid, process.pid_start_time, entry.started_at, entry.exec_error, timeline
            )
            self.transport.reply(client, req, reply)


def _record(process: Process, pidfile: str | None) -> None:
    """The start time and the pid file, right after the go byte, so that the
    child builds its root while we read /proc and create the file (0.1-0.2
    ms; a tmpfs create since runtime/rundir.py), and before the joined byte, before which the child
    runs nothing of the command: if we die before the file exists, the
    child reads EOF where it waits for that byte and exits
    (child.wait_for_joined); from the file on, the API finds the child by
    it and kills it (runtime/pids.py)."""
    process.pid_start_time = process_start_time(process.pid)
    if pidfile is not None:
        pids.write_pidfile(pidfile, process.pid, process.pid_start_time)
        process.pidfile = pidfile


def make_cgroup(
    manager: cgroups.Manager | None, container_id: str, limits: Limits, tuning: Tuning
) -> cgroups.Cgroup | None:
    """The container's cgroup; None (with a warning) when it has no limit
    and the kernel refuses one; a RequestError when it needs one."""
    needed = limits.needs_cgroup or tuning.needs_cgroup
    if manager is None:
        if needed:
            raise RequestError(ErrorKind.FAILED, "cgroup: no cgroup controllers are mounted")
        return None
    try:
        return manager.create(container_id, limits, tuning)
    except cgroups.CgroupError as err:
        if needed:
            raise RequestError(ErrorKind.FAILED, f"cgroup: {err}") from err
        log.warning("%s runs without a cgroup (no accounting): %s", container_id, err)
        return None


def _clone_flags(spec: ContainerSpec, spare_net: bool) -> int:
    """The namespaces ``spec``'s child gets from clone(2); ``spare_net``: it
    joins a network namespace made ahead instead (sparenet.py)."""
    namespaces = DEFAULT_NAMESPACES
    if spare_net or (spec.network is not None and spec.network.mode == HOST):
        namespaces &= ~Namespace.NEWNET  # the spare's, or the host's
    for shared in spec.options.host_namespaces:
        # Docker's --pid/--ipc/--uts host: that namespace is not made.
        namespaces &= ~HOST_SHAREABLE[shared]
    if spec.security.userns_host_id is not None:
        namespaces |= Namespace.NEWUSER
    return clone_flags(namespaces)


def loopback_up(pidfd: int) -> None:
    """``ip link set lo up`` in the child's own network namespace, from here.

    Bringing lo up is the kernel's dev_open of it (IPv6's ::1 and its
    routes too): 0.3-0.4 ms, which the child would spend on its critical
    path and the launcher spends while the child builds its root.  A
    netlink socket acts on the namespace it was made in, and setns(2)
    takes the child's pidfd for its namespace (Linux >= 5.8)."""
    try:
        with netlink.open_in_namespace(pidfd) as inside:
            netlink.set_up(inside, "lo")
    except OSError as err:
        raise RequestError(ErrorKind.FAILED, f"bring up lo: {err}") from err


def _has_exited(pidfd: int) -> bool:
    """Has the child exited (not reaped: WNOWAIT leaves that to the reaper)?"""
    try:
        return os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _device_rules(spec: ContainerSpec) -> tuple[str, ...]:
    """The devices cgroup rules a container adds to the defaults: its
    ``DeviceCgroupRules`` and one per device it was given (the node's own
    type and numbers, stat(2))."""
    rules = list(spec.options.tuning.device_rules)
    for device in spec.options.devices:
        info = os.stat(device.host)
        kind = "b" if stat.S_ISBLK(info.st_mode) else "c"
        numbers = f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
        rules.append(f"{kind} {numbers} {device.permissions}")
    return tuple(rules)
