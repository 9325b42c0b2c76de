"""``Runtime``: what the API calls.  Thread-safe; every method may block.

It owns the record store and the launcher client and keeps the two in step:

    create  -> record (created) -> launcher create -> record (running, pid)
    launcher exit event -> record (exited, exit code) -> ack to the launcher
    kill / stop / remove / wait / logs -> read the record, ask the launcher
    kill_many -> select running records (runtime/selection.py), one launcher
               request per batch of them
    exec    -> exec record (created) -> launcher exec -> exec record (running)
    attach  -> a log cursor to follow, and input/resize through the launcher

A record is written before the launcher is asked for anything, and exit
statuses are acknowledged only once recorded, so a crash at any point loses
neither a container nor its exit code (docs/reliability.md).

Reconciling (at start-up, and after any lost connection to the launcher):
the launcher's list is the truth.  A record it holds gets its pid and state
from it, and the exits it kept are recorded; a record it does not hold
belonged to a launcher that died: its process, if still there, is killed
(found by pid and start time, ``runtime/pids.py``) and the record ends with
``exit_code`` null and an ``error`` saying the status was lost; then the
cleaners of ``runtime/leftovers.py`` remove what dead containers left.
"""

from __future__ import annotations

import base64
import builtins
import errno
import logging
import os
import secrets
import shutil
import signal as signal_module
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from runtime import leftovers, logs, pids, timeutil
from runtime.errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    InvalidState,
    LimitReached,
    NotFound,
    RuntimeFailure,
    StorageFull,
    Unavailable,
)
from runtime.gate import Gate
from runtime.images import DEFAULT_MAX_BYTES, Image, ImageStore, ImportJob
from runtime.images.builtin import HOST
from runtime.images.hostview import HostPathError, HostView
from runtime.launcher.client import Disconnected, LauncherClient, UnknownOp
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord, ExecRecord, RecordStore
from runtime.reserve import Reserve
from runtime.security import capabilities, identity
from runtime.security.userns import DEFAULT_HOST_ID
from runtime.selection import Selector
from runtime.signals import catches, parse_signal
from runtime.spec import (
    DEFAULT_IMAGE,
    LAYER_ROOT,
    LAYER_RW,
    SECCOMP_PROFILES,
    USERNS_SIZE,
    ContainerSpec,
    CreateRequest,
    ExecRequest,
    InvalidField,
    Limits,
    Mount,
    RootfsPlan,
    Security,
    SecurityRequest,
    to_dict,
    under,
)
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.runtime")

STATUS_LOST = "exit status lost: the launcher that ran this container is gone"
LAUNCH_LOST = "launch lost: the launcher went away before this container was started"
ORPHAN_KILLED = "; its process, still running without a parent to report it, was killed"
#: A launch needs room for its records and logs; below this, refuse it up front.
MIN_FREE_BYTES = 1 << 20
#: Retrying to record an exit that could not be written (full disk, locked db).
RECORD_RETRY_SECONDS = 1.0
LOG_STREAMS = ("stdout", "stderr")
#: How long an exec failure may take to show up as an exit.
EXEC_FAILURE_WAIT = 10.0
KILL_WAIT = 10.0
#: Containers per launcher request of a bulk kill.  A SIGKILL costs the
#: launcher ≈ 50 µs (measured: 2,000 in 92-107 ms), so
#: one request of 2,000 would hold its loop ≈ 0.1 s; a batch holds it
#: ≈ 25 ms whatever the selection's size, about one turn's worth of exits
#: (REAPS_PER_TURN), and the loop reaps between batches (docs/performance.md).
KILL_BATCH = 500
#: How many removed containers' last records are kept (``Runtime._removed``).
REMEMBER_REMOVED = 256


@dataclass(frozen=True)
class AttachTarget:
    """A container or exec to attach to: where its output is, what it takes.

    ``done`` completes with its record (``exit_code``, ``signal``, ``error``)
    once it has exited."""

    id: str
    kind: str  # "container" or "exec"
    tty: bool
    stdin: bool
    log_paths: tuple[str, ...]
    done: Future[Any]


@dataclass(frozen=True)
class KillResult:
    """What a bulk kill did: ``killed`` were signalled, ``not_running`` were
    selected but not running (created, exited, or exiting meanwhile), and
    ``not_found`` are the refs that name no container."""

    signal: int
    killed: tuple[str, ...]
    not_running: tuple[str, ...]
    not_found: tuple[str, ...]


def new_container_id() -> str:
    """64 hex digits from the OS's cryptographic source (random(7)).

    The tutorial seeded rand() with the time, so two containers started in
    the same second got the same id."""
    return secrets.token_hex(32)


#: Mount targets that would undo the masked and read-only paths (runtime.rootfs).
FORBIDDEN_TARGETS = ("/proc", "/sys")
#: overlayfs(5) splits its options at ',' and lowerdir at ':'.
_OVERLAY_SPECIALS = (",", ":", "\\")


def _log_rmtree_error(function: Any, path: str, excinfo: Any) -> None:
    log.warning("could not remove %s: %s", path, excinfo[1])


class Runtime:
    def __init__(
        self,
        state_dir: str,
        *,
        userns_range: tuple[int, int] = (DEFAULT_HOST_ID, USERNS_SIZE),
        max_containers: int | None = None,
        default_limits: Limits | None = None,
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        host_image_paths: Sequence[str] = (),
    ) -> None:
        """``userns_range`` is (first host id, count) for ``userns`` containers;
        ``max_containers`` caps the containers created or running at once;
        ``default_limits`` fill the limits a create leaves unset;
        ``max_image_bytes`` caps an imported image's archive and contents;
        ``host_image_paths`` are host directories the ``host`` image adds
        to its view (runtime/images/hostview.py)."""
        self.state_dir = os.path.realpath(state_dir)
        if any(c in self.state_dir for c in _OVERLAY_SPECIALS):
            raise RuntimeFailure(
                f"the state dir {self.state_dir!r} must not contain ',' ':' or '\\': "
                "overlayfs cannot take such paths"
            )
        self.userns_range = userns_range
        self.max_containers = max_containers
        self.default_limits = default_limits or Limits()
        # Counting the running containers and inserting a new one are one step.
        self._admission = threading.Lock()
        os.makedirs(os.path.join(self.state_dir, "containers"), mode=0o700, exist_ok=True)
        self.images = ImageStore(os.path.join(self.state_dir, "images"), max_image_bytes)
        try:
            self.host_view = HostView(host_image_paths)
        except HostPathError as err:
            raise InvalidArgument("host_image_paths", str(err)) from err
        self.records = RecordStore(os.path.join(self.state_dir, "mydocker.db"))
        self.launcher = LauncherClient(
            self.state_dir, on_event=self._on_event, on_disconnect=self._on_launcher_lost
        )
        # Guards "is it exited?" against "it exited" so no waiter misses a wake-up.
        self._exit_lock = threading.Lock()
        self._exit_waiters: dict[str, list[Future[ContainerRecord]]] = {}
        self._removal_waiters: dict[str, list[Future[ContainerRecord]]] = {}
        # The last records of recently removed containers: an auto-removed
        # container can be gone before the create or start that ran it has
        # answered, and that answer (and a late waiter) still needs its record.
        self._removed: OrderedDict[str, ContainerRecord] = OrderedDict()
        self._exec_waiters: dict[str, list[Future[ExecRecord]]] = {}
        # Room to record exits in when the state dir fills up (runtime/reserve.py).
        self._reserve = Reserve(os.path.join(self.state_dir, "reserve"))
        # Launches (shared) against reconciles (exclusive): see runtime/gate.py.
        self._gate = Gate()
        self._closing = False
        self.reconciles = 0  # how many reconciles completed (tests, logs)

    # -- life cycle -----------------------------------------------------
    def start(self) -> None:
        """Connect to (or start) the launcher and reconcile the records with it."""
        self._reserve.ensure()
        self.images.prepare()
        self.launcher.connect()
        self._reconcile()

    def close(self, stop_containers: bool = False, grace: float = 10.0) -> None:
        """Let go of the launcher and the records.

        Containers keep running under the launcher (a later start picks them
        up again) unless ``stop_containers``: then each running container is
        stopped first (SIGTERM, SIGKILL after ``grace`` seconds), in parallel,
        so the whole takes at most about ``grace + KILL_WAIT`` seconds."""
        if stop_containers:
            self.stop_all(grace)
        self._closing = True
        with self._exit_lock:
            waiters: builtins.list[builtins.list[Future[Any]]] = [
                *self._exit_waiters.values(),
                *self._removal_waiters.values(),
                *self._exec_waiters.values(),
            ]
            self._exit_waiters, self._removal_waiters, self._exec_waiters = {}, {}, {}
        for futures in waiters:
            for future in futures:
                if not future.done():
                    future.set_exception(Unavailable("the service is shutting down"))
        self.launcher.close()
        self.records.close()

    def stop_all(self, grace: float = 10.0) -> list[ContainerRecord]:
        """Stop every running or created container; return them as they ended."""
        targets = self.records.list(status=RUNNING) + self.records.list(status=CREATED)
        if not targets:
            return []
        log.info("stopping %d containers", len(targets))

        def stop_one(record: ContainerRecord) -> ContainerRecord | None:
            try:
                return self.stop(record.id, grace)
            except RuntimeFailure as err:
                log.error("stopping %s failed: %s", record.id, err)
                return None

        with ThreadPoolExecutor(min(32, len(targets)), thread_name_prefix="stop") as pool:
            stopped = list(pool.map(stop_one, targets))
        return [r for r in stopped if r is not None]

    def _reconcile(self) -> None:
        with self._gate.exclusive():
            held = {e["id"]: e for e in self.launcher.request({"op": "list"})["containers"]}
            for record in self.records.list(status=RUNNING) + self.records.list(status=CREATED):
                entry = held.get(record.id)
                if entry is None:
                    self._bury(record)
                elif entry["exit"] is None:
                    with self._exit_lock:
                        current = self.records.get(record.id)
                        # An exit event may have been recorded since the list.
                        if current is not None and current.status != EXITED:
                            self.records.update(
                                record.id,
                                status=RUNNING if entry["state"] == "running" else CREATED,
                                pid=entry["pid"],
                                pid_start_time=entry["pid_start_time"],
                                started_at=entry["started_at"] or record.started_at,
                            )
            execs = self.records.list_execs(status=RUNNING)
            for exec_record in execs + self.records.list_execs(status=CREATED):
                if exec_record.id not in held:
                    self._mark_exec_lost(exec_record.id)
            live = {i for i, e in held.items() if e["exit"] is None}
            leftovers.clean(self.state_dir, live)
        for entry in held.values():
            if entry["exit"] is not None:
                self._on_event(
                    {"event": "exit", "id": entry["id"], "kind": entry["kind"], **entry["exit"]}
                )
        self.reconciles += 1

    def _bury(self, record: ContainerRecord) -> None:
        """End a record whose launcher is gone: kill its orphan, keep no made-up status.

        The pid file (written by the launcher before the go byte) knows the
        process even when the record does not yet."""
        found = pids.read_pidfile(self.pidfile_path(record.id))
        pid, start_time = found if found else (record.pid, record.pid_start_time)
        killed = pids.kill_orphan(pid, start_time)
        if killed:
            log.warning("killed orphaned container %s (pid %s)", record.id, pid)
        if pid is None:
            error = LAUNCH_LOST
        else:
            error = STATUS_LOST + (ORPHAN_KILLED if killed else "")
        self._mark_lost(record.id, error)

    def _mark_lost(self, container_id: str, error: str = STATUS_LOST) -> None:
        with self._exit_lock:
            record = self.records.update(
                container_id,
                status=EXITED,
                exit_code=None,
                signal=None,
                error=error,
                finished_at=now_rfc3339(),
            )
            self._wake_locked(record)

    def _mark_exec_lost(self, exec_id: str) -> None:
        with self._exit_lock:
            record = self.records.update_exec(
                exec_id, status=EXITED, error=STATUS_LOST, finished_at=now_rfc3339()
            )
            self._wake_exec_locked(record)

    def _on_launcher_lost(self) -> None:
        """The connection dropped: reconnect and reconcile, on a thread of its own.

        A launcher that is still alive still holds every container and every
        unacknowledged exit, so nothing is marked lost; only when a new
        launcher had to be started are the old one's containers buried."""
        if self._closing:
            return
        log.warning("lost the connection to the launcher; reconnecting")
        threading.Thread(target=self._recover, name="launcher-recovery", daemon=True).start()

    def _recover(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                self.launcher.connect()
                self._reconcile()
            except RuntimeFailure as err:
                log.error("reconnecting to the launcher failed: %s; retrying", err)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                log.info("reconnected to the launcher (pid %s)", self.launcher.launcher_pid)
                return

    # -- events from the launcher (reader thread) -------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") != "exit":
            return
        if event.get("kind") == "exec":
            self._on_exec_exit(event)
            return
        container_id = event["id"]
        record: ContainerRecord | None = None
        try:
            with self._exit_lock:
                current = self.records.get(container_id)
                if current is not None:
                    record = self.records.update(
                        container_id,
                        status=EXITED,
                        exit_code=event["exit_code"],
                        signal=event["signal"],
                        finished_at=event["finished_at"],
                        results={**current.results, **event.get("results", {})},
                        # A lost-status error set meanwhile is wrong now.
                        **self._clear_lost(container_id),
                    )
        except RuntimeFailure as err:
            # Not recorded, so not acknowledged: the launcher keeps the status.
            if isinstance(err, StorageFull) and self._reserve.release():
                self._on_event(event)  # at once, into the space set aside
                return
            # Try again soon (a full disk or a locked database passes).
            if not self._closing:
                log.error("recording the exit of %s failed: %s; retrying", container_id, err)
                timer = threading.Timer(RECORD_RETRY_SECONDS, self._on_event, (event,))
                timer.daemon = True
                timer.start()
            return
        # Recorded: acknowledge first, then wake the waiters, so that a waiter
        # that closes the runtime at once (a clean shutdown) has not cut the
        # ack off, which would keep the launcher holding the exit (and alive).
        try:
            self.launcher.notify({"op": "ack", "id": container_id})
        finally:
            if record is not None:
                with self._exit_lock:
                    self._wake_locked(record)
        if record is not None and record.spec.auto_remove:
            # Not on this (the launcher reader's) thread: removing files may
            # take a while, and later events must not wait for it.
            threading.Thread(
                target=self._auto_remove, args=(container_id,), name="auto-remove", daemon=True
            ).start()

    def _auto_remove(self, container_id: str) -> None:
        try:
            self.remove(container_id)
        except NotFound:
            pass  # removed by a client meanwhile
        except RuntimeFailure:
            log.exception("auto-removing container %s failed", container_id)

    def _on_exec_exit(self, event: dict[str, Any]) -> None:
        record: ExecRecord | None = None
        with self._exit_lock:
            if self.records.get_exec(event["id"]) is not None:
                record = self.records.update_exec(
                    event["id"],
                    status=EXITED,
                    exit_code=event["exit_code"],
                    signal=event["signal"],
                    finished_at=event["finished_at"],
                )
        # Ack even for an exec whose container was removed meanwhile, or the
        # launcher would keep the entry (and itself) forever; before waking
        # the waiters, as for containers (_on_event).
        try:
            self.launcher.notify({"op": "ack", "id": event["id"]})
        finally:
            if record is not None:
                with self._exit_lock:
                    self._wake_exec_locked(record)

    def _wake_exec_locked(self, record: ExecRecord) -> None:
        for future in self._exec_waiters.pop(record.id, []):
            if not future.done():
                future.set_result(record)

    def _clear_lost(self, container_id: str) -> dict[str, Any]:
        current = self.records.get(container_id)
        if (
            current is not None
            and current.error
            and current.error.startswith((STATUS_LOST, "launch failed: the launcher"))
        ):
            return {"error": None}
        return {}

    def _wake(self, record: ContainerRecord) -> None:
        with self._exit_lock:
            self._wake_locked(record)

    def _wake_locked(self, record: ContainerRecord) -> None:
        for future in self._exit_waiters.pop(record.id, []):
            if not future.done():
                future.set_result(record)

    # -- paths ----------------------------------------------------------
    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.state_dir, "containers", container_id)

    def log_path(self, container_id: str, stream: str) -> str:
        return os.path.join(self.container_dir(container_id), f"{stream}.log")

    def exec_dir(self, container_id: str, exec_id: str) -> str:
        return os.path.join(self.container_dir(container_id), "execs", exec_id)

    def exec_log_path(self, record: ExecRecord, stream: str) -> str:
        return os.path.join(self.exec_dir(record.container_id, record.id), f"{stream}.log")

    def pidfile_path(self, container_id: str) -> str:
        return os.path.join(self.container_dir(container_id), pids.PIDFILE)

    def _check_space(self) -> None:
        try:
            free = shutil.disk_usage(self.state_dir).free
        except OSError as err:
            raise RuntimeFailure(f"the state dir {self.state_dir}: {err.strerror}") from err
        if free < MIN_FREE_BYTES:
            raise StorageFull(
                self.state_dir, f"{free} bytes free, a launch needs {MIN_FREE_BYTES >> 20} MiB"
            )
        # The reserve for recording exits was given up (the disk filled): it
        # is not free space.  Launch again only once it is set aside again
        # with room to spare, or the next exit would find the disk full.
        if not self._reserve.ensure(headroom=MIN_FREE_BYTES):
            raise StorageFull(
                self.state_dir,
                f"{free} bytes free, which the space held back for recording exits "
                f"needs first ({self._reserve.size >> 20} MiB + {MIN_FREE_BYTES >> 20} MiB)",
            )

    # -- operations -----------------------------------------------------
    def create(self, request: CreateRequest) -> ContainerRecord:
        """Record and launch a container; with ``request.start`` it runs at
        once, without it the child waits on its sync pipe until
        ``start_container``.  The record's spec holds the limits that applied."""
        container_id = new_container_id()
        security = self._security(request.security)
        found = self.images.get(request.image or DEFAULT_IMAGE)
        self._check_mounts(found, request.mounts, request.workdir or "/")
        try:
            effective = request.limits.over(self.default_limits)
            # The CPUs this process may run on (sched_getaffinity(2)), as Docker counts.
            cpu_count = len(os.sched_getaffinity(0))
            if effective.cpus is not None and effective.cpus > cpu_count:
                raise InvalidField(
                    "limits.cpus", f"must be at most {cpu_count}, the CPUs this machine has"
                )
            spec = ContainerSpec(
                command=tuple(request.command),
                hostname=request.hostname or container_id[:12],
                env=dict(request.env),
                workdir=request.workdir or "/",
                security=security,
                labels=dict(request.labels),
                auto_remove=request.auto_remove,
                tty=request.tty,
                stdin=request.stdin,
                stdin_once=request.stdin_once,
                limits=effective,
                image=found.name,
                read_only=request.read_only,
                mounts=tuple(request.mounts),
                rootfs=self._plan(
                    found,
                    self.container_dir(container_id),
                    request.read_only,
                    security.userns_host_id,
                ),
            )
        except InvalidField as err:
            raise InvalidArgument(err.field, err.message) from err
        except (ValueError, TypeError) as err:
            raise InvalidArgument("spec", str(err)) from err
        record = ContainerRecord(
            id=container_id,
            name=request.name or container_id,
            status=CREATED,
            spec=spec,
            created_at=now_rfc3339(),
        )
        self._check_space()
        with self._gate.shared():
            with self._admission:
                self._admit()
                self.images.get(found.name)  # not deleted meanwhile (delete_image holds the lock)
                try:
                    os.makedirs(self.container_dir(container_id), mode=0o700)
                except OSError as err:
                    if err.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise StorageFull(
                            self.container_dir(container_id), err.strerror or "no space"
                        ) from err
                    raise RuntimeFailure(f"creating the container's directory: {err}") from err
                try:
                    self._make_root_dirs(spec.rootfs, security.userns_host_id)
                    self.records.insert(record)
                except (RuntimeFailure, OSError):
                    shutil.rmtree(self.container_dir(container_id), ignore_errors=True)
                    raise
            self._launch(container_id, to_dict(spec), request.start, request.tty_size)
        return self._settle(container_id)

    def _security(self, asked: SecurityRequest) -> Security:
        """The spec's security part, each bad value named by its field."""
        seccomp = asked.seccomp
        fields: dict[str, Any] = {
            "seccomp": seccomp,
            "no_new_privileges": asked.no_new_privileges,
        }
        for name, names in (("cap_add", asked.cap_add), ("cap_drop", asked.cap_drop)):
            for cap in names:
                try:
                    capabilities.normalize(cap)
                except ValueError as err:
                    raise InvalidArgument(name, str(err)) from err
        fields["capabilities"] = capabilities.resolve(asked.cap_add, asked.cap_drop)
        if asked.user is not None:
            try:
                who = identity.parse(asked.user)
            except ValueError as err:
                raise InvalidArgument("user", str(err)) from err
            fields["uid"], fields["gid"] = who.uid, who.gid
        if seccomp not in SECCOMP_PROFILES:
            raise InvalidArgument("seccomp", f"must be one of {', '.join(SECCOMP_PROFILES)}")
        if asked.userns:
            fields["userns_host_id"] = self.userns_range[0]
            if max(fields.get("uid", 0), fields.get("gid", 0)) >= USERNS_SIZE:
                raise InvalidArgument("user", f"with userns, ids must be below {USERNS_SIZE}")
        return Security(**fields)

    def _admit(self) -> None:
        """LimitReached when ``max_containers`` are already created or running."""
        if self.max_containers is None:
            return
        active = len(self.records.list(status=RUNNING)) + len(self.records.list(status=CREATED))
        if active >= self.max_containers:
            raise LimitReached(
                f"{active} containers are running; this service runs at most "
                f"{self.max_containers} (--max-containers)",
                retry_after=1,
            )

    def _check_mounts(self, image: Image, mounts: Sequence[Mount], workdir: str) -> None:
        """What only the host can tell: do sources exist, may they be shown?"""
        host = image.rootfs is None
        for index, mount in enumerate(mounts):
            field = f"mounts.{index}"
            if under(mount.target, FORBIDDEN_TARGETS):
                raise InvalidArgument(
                    f"{field}.target",
                    f"{mount.target} is under /proc or /sys, whose masks it could undo",
                )
            if mount.source is not None:
                if not os.path.exists(mount.source):
                    raise InvalidArgument(f"{field}.source", f"{mount.source} does not exist")
                if under(os.path.realpath(mount.source), [self.state_dir]):
                    raise InvalidArgument(
                        f"{field}.source",
                        f"{mount.source} is inside the service's state dir, "
                        "which containers may not see",
                    )
            if host and not self._host_path_ok(mount.target):
                raise InvalidArgument(
                    f"{field}.target",
                    f"{mount.target} does not exist in the host image's read-only "
                    f"{self._host_dir(mount.target)}: use an existing path there, any path "
                    "outside it, or another image",
                )
        if host and not self._host_path_ok(workdir):
            raise InvalidArgument(
                "workdir",
                f"{workdir} does not exist in the host image's read-only "
                f"{self._host_dir(workdir)} and cannot be created there: use an existing "
                "directory there, any path outside it, or another image",
            )

    def _host_path_ok(self, path: str) -> bool:
        """A path of the host view's own tmpfs is made on demand; one in a
        read-only host directory must exist there (runtime/images/hostview.py)."""
        if not self.host_view.shows(path):
            return True
        return os.path.exists(path) and not under(os.path.realpath(path), [self.state_dir])

    def _host_dir(self, path: str) -> str:
        return next(d for d in self.host_view.binds if under(path, [d]))

    def _plan(
        self, image: Image, cdir: str, read_only: bool, userns_host_id: int | None
    ) -> RootfsPlan:
        layer = os.path.join(cdir, "layer")
        if image.rootfs is None:
            view = self.host_view
            return RootfsPlan(
                root=os.path.join(layer, LAYER_ROOT),
                layer=layer,
                binds=view.binds,
                links=view.links,
                masks=view.masks(),
                hide=(self.state_dir,) if view.shows(self.state_dir) else (),
            )
        lower = image.rootfs
        if userns_host_id is not None:
            lower = self.images.shifted_rootfs(image.name, userns_host_id, USERNS_SIZE)
        return RootfsPlan(
            root=os.path.join(layer, LAYER_ROOT), lower=lower, layer=layer, read_only=read_only
        )

    @staticmethod
    def _make_root_dirs(plan: RootfsPlan | None, owner: int | None) -> None:
        """The root's mount point and the overlay's layer dirs (runtime.rootfs).

        With a user namespace they belong to its root (host uid ``owner``),
        which mounts the overlay and writes its upper dir."""
        if plan is None:
            return
        if plan.layer is None:
            return
        dirs = [plan.layer, plan.root]
        if plan.lower is not None:
            rw = os.path.join(plan.layer, LAYER_RW)
            dirs.append(rw)
            if not plan.read_only:
                dirs += [os.path.join(rw, "upper"), os.path.join(rw, "work")]
        for path in dirs:
            os.mkdir(path, 0o700)
            if owner is not None:
                os.chown(path, owner, owner)

    # -- images ---------------------------------------------------------
    def list_images(self) -> list[Image]:
        return [self._described(image) for image in self.images.list()]

    def get_image(self, ref: str) -> Image:
        return self._described(self.images.get(ref))

    def _described(self, image: Image) -> Image:
        if image.name != HOST:
            return image
        return replace(image, contents=tuple(self.host_view.contents()))

    def image_users(self, name: str) -> list[ContainerRecord]:
        """The containers (any status) whose root is built on image ``name``."""
        return [r for r in self.records.list() if r.spec.image == name]

    def delete_image(self, ref: str) -> None:
        """Delete an imported image; 409 while a container (even exited) uses it.

        Holds the admission lock, which ``create`` holds from its last look
        at the image until its record is in: no container can slip in."""
        with self._admission:
            image = self.images.get(ref)
            if image.builtin:
                raise Forbidden(f"{image.name} is a built-in image and cannot be deleted")
            users = self.image_users(image.name)
            if users:
                names = ", ".join(r.name for r in users[:5])
                raise Conflict(
                    f"image {image.name} is used by {len(users)} container(s) ({names}); "
                    "delete them first"
                )
            self.images.delete(image.name)

    def begin_import(self, name: str) -> ImportJob:
        """Start importing a tar stream as image ``name``: ``write`` chunks, then ``finish``."""
        return self.images.begin_import(name)

    def _launch(
        self,
        container_id: str,
        spec: dict[str, Any],
        start: bool,
        tty_size: tuple[int, int] | None = None,
    ) -> None:
        def record_launch(reply: dict[str, Any]) -> None:
            exec_error = reply.get("exec_error")
            self.records.update(
                container_id,
                status=RUNNING if start else CREATED,
                pid=reply["pid"],
                pid_start_time=reply.get("pid_start_time"),
                started_at=reply.get("started_at"),
                error=exec_error["message"] if exec_error else None,
            )

        message = {
            "op": "create",
            "id": container_id,
            "spec": spec,
            "start": start,
            "stdout": self.log_path(container_id, "stdout"),
            "stderr": self.log_path(container_id, "stderr"),
            "tty_size": list(tty_size) if tty_size else None,
            "pidfile": self.pidfile_path(container_id),
        }
        try:
            self.launcher.request(message, on_reply=record_launch)
        except Disconnected as err:
            # The launcher (or our connection to it) went away mid-launch:
            # only the reconcile that follows knows whether it runs.
            raise Unavailable(
                f"the launcher went away while launching container {container_id}; "
                f"GET /containers/{container_id} tells whether it runs"
            ) from err
        except RuntimeFailure as err:
            # Keep the record, and say why it never ran.
            self._fail(container_id, f"launch failed: {err}")
            raise

    def _fail(self, container_id: str, error: str) -> None:
        record = self.records.get(container_id)
        if record is not None and record.status != EXITED:
            self._wake(
                self.records.update(
                    container_id, status=EXITED, error=error, finished_at=now_rfc3339()
                )
            )

    def _settle(self, container_id: str) -> ContainerRecord:
        """The record after launch; an exec failure is only final once exited."""
        record = self._current(container_id)
        if record.error and record.status != EXITED:
            try:
                return self.exit_future(container_id).result(EXEC_FAILURE_WAIT)
            except FutureTimeout:
                pass
        return self._current(container_id)

    def _current(self, container_id: str) -> ContainerRecord:
        """The record by full id, or the last one of a container removed since."""
        record = self.records.get(container_id)
        if record is not None:
            return record
        with self._exit_lock:
            removed = self._removed.get(container_id)
        if removed is None:
            raise NotFound("container", container_id)
        return removed

    def start_container(self, ref: str) -> ContainerRecord:
        """Release a created container (the sync pipe's go byte)."""
        record = self.get(ref)
        if record.status != CREATED:
            raise InvalidState(f"container {record.id} is {record.status}, not created")

        def record_start(reply: dict[str, Any]) -> None:
            exec_error = reply.get("exec_error")
            self.records.update(
                record.id,
                status=RUNNING,
                started_at=reply.get("started_at"),
                error=exec_error["message"] if exec_error else None,
            )

        with self._gate.shared():
            self.launcher.request({"op": "start", "id": record.id}, on_reply=record_start)
        return self._settle(record.id)

    def get(self, ref: str) -> ContainerRecord:
        return self.records.resolve(ref)

    def stats(self, ref: str) -> dict[str, Any]:
        """Live counters of a running container: memory_bytes,
        memory_peak_bytes, cpu_seconds, pids (``None``: not measured)."""
        record = self.get(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        stats: dict[str, Any] = self.launcher.request({"op": "stats", "id": record.id})["stats"]
        return stats

    def list(self, status: str | None = None, name: str | None = None) -> list[ContainerRecord]:
        return self.records.list(status=status, name=name)

    def kill(self, ref: str, signal: str | int = "SIGKILL") -> ContainerRecord:
        signo = parse_signal(signal)
        record = self.get(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        self._signal(record, signo)
        return self.get(record.id)

    def kill_many(self, selector: Selector, signal: str | int = "SIGKILL") -> KillResult:
        """Signal every running container the selector picks, in one launcher
        request per ``KILL_BATCH`` containers (``kill`` for each: PID 1 only).

        Everything is checked before anything is sent: a bad signal or
        selector (InvalidArgument) or an ambiguous ref (AmbiguousReference)
        signals nothing.  An unknown ref is reported, not an error: it may
        be a container that exited and was auto-removed a moment ago."""
        signo = parse_signal(signal)
        selector.check()
        not_found: builtins.list[str] = []
        if selector.refs is None:
            # Only running ones: a filter does not report the thousands of
            # exited containers it also matches.
            candidates = self.records.list(status=RUNNING)
        else:
            candidates = []
            for ref in selector.refs:
                try:
                    candidates.append(self.get(ref))
                except NotFound:
                    not_found.append(ref)
        chosen = list({r.id: r for r in candidates if selector.matches(r)}.values())
        running = [r.id for r in chosen if r.status == RUNNING]
        not_running = [r.id for r in chosen if r.status != RUNNING]
        killed: builtins.list[str] = []
        for start in range(0, len(running), KILL_BATCH):
            batch = running[start : start + KILL_BATCH]
            done, gone = self._signal_batch(batch, signo)
            killed += done
            not_running += gone
        return KillResult(signo, tuple(killed), tuple(not_running), tuple(not_found))

    def _signal_batch(
        self, ids: builtins.list[str], signo: int
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """(signalled, not running) for one launcher request's worth of ids."""
        try:
            reply = self.launcher.request({"op": "kill_many", "ids": ids, "signal": int(signo)})
        except UnknownOp:
            # A launcher started by an older API (launchers outlive upgrades):
            # the single kill, one request each.
            done, gone = [], []
            for container_id in ids:
                try:
                    self.launcher.request({"op": "kill", "id": container_id, "signal": signo})
                except (NotFound, InvalidState):
                    gone.append(container_id)
                else:
                    done.append(container_id)
            return done, gone
        return list(reply["killed"]), list(reply["not_running"])

    def _signal(self, record: ContainerRecord, signo: int) -> None:
        """Ask the launcher to signal a container; InvalidState once it has exited.

        The launcher forgets a container as soon as its exit is recorded (the
        ack), which can fall between our look at the record and this request:
        its "no such container" then means "not running", not a 404."""
        try:
            self.launcher.request({"op": "kill", "id": record.id, "signal": int(signo)})
        except NotFound as err:
            raise InvalidState(f"container {record.id} is not running (it has exited)") from err

    def stop(self, ref: str, timeout: float = 10.0) -> ContainerRecord:
        """SIGTERM, then SIGKILL once ``timeout`` seconds have passed.

        The command is PID 1 of its namespace, which only receives signals it
        handles (pid_namespaces(7)): when it has no SIGTERM handler the
        SIGTERM would be dropped, so we go straight to SIGKILL.
        """
        record = self.get(ref)
        if record.status == EXITED:
            return record
        if record.status == RUNNING and self._catches(record, signal_module.SIGTERM):
            try:
                self._signal(record, signal_module.SIGTERM)
                return self.exit_future(record.id).result(timeout)
            except (FutureTimeout, InvalidState):
                pass
        return self._kill_and_wait(record)

    def _catches(self, record: ContainerRecord, signo: int) -> bool:
        # A reused pid is another process: ask only if it is still ours.
        if not pids.same_process(record.pid, record.pid_start_time):
            return False
        assert record.pid is not None
        return catches(record.pid, signo)

    def open_pidfd(self, ref: str) -> int:
        """A pidfd for a running container's PID 1 (the caller closes it).

        For features that must reach the process from the API side (attach,
        exec: issue 6): the pidfd is checked against the recorded start time
        after it is opened, so it never names a process that reused the pid;
        setns(2) accepts it directly."""
        record = self.get(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        pidfd = pids.open_pidfd(record.pid, record.pid_start_time)
        if pidfd is None:
            raise InvalidState(f"container {record.id} is not running (its process is gone)")
        return pidfd

    def _kill_and_wait(self, record: ContainerRecord) -> ContainerRecord:
        try:
            self._signal(record, signal_module.SIGKILL)
        except InvalidState:
            pass  # it exited meanwhile
        try:
            return self.exit_future(record.id).result(KILL_WAIT)
        except FutureTimeout as err:
            raise Unavailable(f"container {record.id} did not die after SIGKILL") from err

    def remove(self, ref: str, force: bool = False) -> None:
        record = self.get(ref)
        if record.status != EXITED:
            if not force:
                raise InvalidState(
                    f"container {record.id} is {record.status}; stop it first or use force"
                )
            self._kill_and_wait(record)
        with self._exit_lock:
            final = self.records.get(record.id)
            if final is None:
                raise NotFound("container", ref)
            self.records.delete(record.id)
            waiters = self._removal_waiters.pop(record.id, [])
            self._removed[record.id] = final
            while len(self._removed) > REMEMBER_REMOVED:
                self._removed.popitem(last=False)
        # The logs and the overlay's upper/work dirs; the mounts themselves
        # lived in the container's mount namespace and went with it.
        shutil.rmtree(self.container_dir(record.id), onerror=_log_rmtree_error)
        for future in waiters:
            if not future.done():
                future.set_result(final)

    def removal_future(self, ref: str) -> Future[ContainerRecord]:
        """A future that completes with the last record once the container is removed."""
        future: Future[ContainerRecord] = Future()
        with self._exit_lock:
            removed = self._removed.get(ref)
            if removed is not None:  # by full id only: names are reused
                future.set_result(removed)
                return future
            record = self.get(ref)
            self._removal_waiters.setdefault(record.id, []).append(future)
        return future

    def exit_future(self, ref: str) -> Future[ContainerRecord]:
        """A future that completes with the record once the container has exited."""
        future: Future[ContainerRecord] = Future()
        with self._exit_lock:
            removed = self._removed.get(ref)
            if removed is not None:  # auto-removed already (by full id only)
                future.set_result(removed)
                return future
            record = self.get(ref)
            if record.status == EXITED:
                future.set_result(record)
                return future
            if self._closing:
                raise Unavailable("the service is shutting down")
            self._exit_waiters.setdefault(record.id, []).append(future)

        self._forget_if_cancelled(self._exit_waiters, record.id, future)
        return future

    def _forget_if_cancelled(
        self, registry: dict[str, builtins.list[Future[Any]]], key: str, future: Future[Any]
    ) -> None:
        """Drop a waiter that gave up (its client went away) at once, so that
        abandoned waits on a long-running container do not pile up."""

        def forget(done: Future[Any]) -> None:
            if done.cancelled():
                with self._exit_lock:
                    waiters = registry.get(key, [])
                    if done in waiters:
                        waiters.remove(done)
                    if not waiters:
                        registry.pop(key, None)

        future.add_done_callback(forget)

    def waiter_count(self) -> int:
        """How many exit futures are pending (tests: none may leak)."""
        with self._exit_lock:
            return sum(len(w) for w in self._exit_waiters.values())

    def wait(self, ref: str, timeout: float | None = None) -> ContainerRecord:
        future = self.exit_future(ref)
        try:
            return future.result(timeout)
        except FutureTimeout:
            return self.get(ref)

    def logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        """The container's output: one stream, or stdout then stderr.

        With ``timestamps``, ``since`` or ``until`` (unix ns) it goes line by
        line (``log_lines``), stdout and stderr merged by time, and with
        ``timestamps`` each line starts with its time (``rfc3339_nano``)
        and a space."""
        paths, current = self._output("container", ref, [stream] if stream else LOG_STREAMS)
        return self._read(paths, current, tail, follow, timestamps, since, until)

    def _output(
        self, kind: str, ref: str, streams: Sequence[str]
    ) -> tuple[builtins.list[str], Callable[[], ContainerRecord | ExecRecord | None]]:
        """A container's (or an exec's) log paths for ``streams`` (``404``,
        then ``422`` for a stream that is not one), and how to read its
        record again while following."""
        if kind == "exec":
            exec_record = self.get_exec(ref)
            _check_streams(streams)
            paths = [self.exec_log_path(exec_record, s) for s in streams]
            return paths, lambda: self.records.get_exec(exec_record.id)
        record = self.get(ref)
        _check_streams(streams)
        return [self.log_path(record.id, s) for s in streams], lambda: self.records.get(record.id)

    def _read(
        self,
        paths: builtins.list[str],
        current: Callable[[], ContainerRecord | ExecRecord | None],
        tail: int | None,
        follow: bool,
        timestamps: bool,
        since: int | None,
        until: int | None,
    ) -> Iterator[bytes]:
        """``logs`` and ``exec_logs`` once the paths are known."""
        running = _while_running(current)
        if not (timestamps or since is not None or until is not None):
            return logs.stream(paths, tail, follow, running)
        fallback = self._fallback_time(current)
        lines = logs.dated(paths, tail, follow, running, fallback, since, until, True, False)
        return logs.joined(lines, timestamps)

    def _fallback_time(
        self, current: Callable[[], ContainerRecord | ExecRecord | None]
    ) -> Callable[[], int]:
        """The time of output the index does not date (written before it
        existed, or not seen yet): the exit's while there is one, as every
        byte was written by then; else now."""
        finished: list[int] = []

        def fallback() -> int:
            if finished:
                return finished[0]
            record = current()
            if record is not None and record.status == EXITED and record.finished_at:
                finished.append(timeutil.parse_ns(record.finished_at))
                return finished[0]
            return time.time_ns()

        return fallback

    def log_lines(
        self,
        ref: str,
        streams: Sequence[str] = LOG_STREAMS,
        tail: int | None = None,
        follow: bool = False,
        since: int | None = None,
        until: int | None = None,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, int, bytes]]:
        """The output as ``(stream name, unix ns, line)``; see ``logs.dated``."""
        paths, current = self._output("container", ref, streams)
        fallback = self._fallback_time(current)
        running = _while_running(current)
        lines = logs.dated(paths, tail, follow, running, fallback, since, until, heartbeat)
        return ((streams[index], when, line) for index, when, line in lines)

    def log_chunks(
        self,
        ref: str,
        streams: Sequence[str] = LOG_STREAMS,
        tail: int | None = None,
        follow: bool = False,
        from_end: bool = False,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, bytes]]:
        """The output as ``(stream name, chunk)``; see ``logs.tagged``.

        The log files are opened before this returns, so a follower keeps
        reading what the container wrote even if it is auto-removed."""
        paths, current = self._output("container", ref, streams)
        running = _while_running(current)
        chunks = logs.tagged(paths, tail, follow, running, from_end, heartbeat)
        return ((streams[index], chunk) for index, chunk in chunks)

    # -- exec -----------------------------------------------------------
    def exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        """Start ``request.spec`` in a running container; answers once it has
        exec'd (or failed to: then it is ``exited`` with 126/127 and ``error``)."""
        container = self.get(ref)
        if container.status != RUNNING:
            raise InvalidState(f"container {container.id} is not running")
        spec = request.spec
        record = ExecRecord(
            id=new_container_id(),
            container_id=container.id,
            status=CREATED,
            spec=spec,
            created_at=now_rfc3339(),
        )
        os.makedirs(self.exec_dir(container.id, record.id), mode=0o700)
        self.records.insert_exec(record)

        def record_launch(reply: dict[str, Any]) -> None:
            exec_error = reply.get("exec_error")
            self.records.update_exec(
                record.id,
                status=RUNNING,
                pid=reply["pid"],
                started_at=reply.get("started_at"),
                error=exec_error["message"] if exec_error else None,
            )

        message = {
            "op": "exec",
            "id": record.id,
            "container": container.id,
            "spec": to_dict(spec),
            "stdout": self.exec_log_path(record, "stdout"),
            "stderr": self.exec_log_path(record, "stderr"),
            "tty_size": list(request.tty_size) if request.tty_size else None,
        }
        try:
            self.launcher.request(message, on_reply=record_launch)
        except RuntimeFailure:
            # Nothing ran: forget the exec, as if it had never been asked for.
            self.records.delete_exec(record.id)
            shutil.rmtree(self.exec_dir(container.id, record.id), ignore_errors=True)
            raise
        current = self.get_exec(record.id)
        if current.error and current.status != EXITED:
            try:
                return self.exec_exit_future(record.id).result(EXEC_FAILURE_WAIT)
            except FutureTimeout:
                pass
        return self.get_exec(record.id)

    def get_exec(self, ref: str) -> ExecRecord:
        return self.records.resolve_exec(ref)

    def list_execs(self, ref: str) -> builtins.list[ExecRecord]:
        """The execs of a container, oldest first."""
        return self.records.list_execs(container_id=self.get(ref).id)

    def exec_exit_future(self, ref: str) -> Future[ExecRecord]:
        future: Future[ExecRecord] = Future()
        with self._exit_lock:
            record = self.get_exec(ref)
            if record.status == EXITED:
                future.set_result(record)
                return future
            if self._closing:
                raise Unavailable("the service is shutting down")
            self._exec_waiters.setdefault(record.id, []).append(future)
        self._forget_if_cancelled(self._exec_waiters, record.id, future)
        return future

    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord:
        try:
            return self.exec_exit_future(ref).result(timeout)
        except FutureTimeout:
            return self.get_exec(ref)

    def exec_logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        """An exec's output, as ``logs``."""
        paths, current = self._output("exec", ref, [stream] if stream else LOG_STREAMS)
        return self._read(paths, current, tail, follow, timestamps, since, until)

    # -- attach ---------------------------------------------------------
    def attach_target(self, kind: str, ref: str) -> AttachTarget:
        """What attaching to a container (``kind="container"``) or an exec needs."""
        if kind == "exec":
            exec_record = self.get_exec(ref)
            spec = exec_record.spec
            return AttachTarget(
                id=exec_record.id,
                kind=kind,
                tty=spec.tty,
                stdin=spec.stdin or spec.tty,
                log_paths=tuple(self.exec_log_path(exec_record, s) for s in LOG_STREAMS),
                done=self.exec_exit_future(exec_record.id),
            )
        record = self.get(ref)
        return AttachTarget(
            id=record.id,
            kind="container",
            tty=record.spec.tty,
            stdin=record.spec.stdin or record.spec.tty,
            log_paths=tuple(self.log_path(record.id, s) for s in LOG_STREAMS),
            done=self.exit_future(record.id),
        )

    def write_input(self, target: AttachTarget, data: bytes) -> None:
        """Bytes for the target's stdin (its pty with ``tty``)."""
        if not target.stdin:
            raise InvalidState(f"{target.kind} {target.id} was not started with stdin or tty")
        self.launcher.request(
            {"op": "write", "id": target.id, "data": base64.b64encode(data).decode()}
        )

    def close_input(self, target: AttachTarget) -> None:
        if not target.stdin:
            raise InvalidState(f"{target.kind} {target.id} was not started with stdin or tty")
        self.launcher.request({"op": "close_stdin", "id": target.id})

    def resize(self, target: AttachTarget, rows: int, cols: int) -> None:
        """TIOCSWINSZ on the target's pty; its foreground process gets SIGWINCH."""
        if not target.tty:
            raise InvalidState(f"{target.kind} {target.id} has no tty")
        if not (0 < rows <= 0xFFFF and 0 < cols <= 0xFFFF):
            raise InvalidArgument("rows", "rows and cols must be in 1..65535")
        self.launcher.request({"op": "resize", "id": target.id, "rows": rows, "cols": cols})

    def exec_log_chunks(
        self, ref: str, streams: Sequence[str] = LOG_STREAMS
    ) -> Iterator[tuple[str, bytes]]:
        """An exec's output from its first byte, followed until it exits, as
        ``(stream name, chunk)`` with heartbeats (``log_chunks``)."""
        paths, current = self._output("exec", ref, streams)
        running = _while_running(current)
        chunks = logs.tagged(paths, None, True, running, heartbeat=True)
        return ((streams[index], chunk) for index, chunk in chunks)


def _check_streams(streams: Sequence[str]) -> None:
    for name in streams:
        if name not in LOG_STREAMS:
            raise InvalidArgument("stream", f"must be one of {', '.join(LOG_STREAMS)}")


def _while_running(
    current: Callable[[], ContainerRecord | ExecRecord | None],
) -> Callable[[], bool]:
    """Whether the record ``current`` reads again has not exited: a follower's end."""

    def running() -> bool:
        record = current()
        return record is not None and record.status != EXITED

    return running
