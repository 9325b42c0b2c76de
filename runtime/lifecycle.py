"""``Lifecycle``: the verbs on a container after its launch.

    restart   stop (SIGTERM, SIGKILL after ``timeout``), then start again:
              the same id, spec, writable layer and logs (appended)
    rename    a new unique name (``NameInUse``: 409)
    pause     the container's cgroup frozen (runtime/freezer.py); the record's
              ``results["paused"]`` says so once the kernel has frozen it
    unpause   thawed, then recorded
    thaw_for_signal   kill and stop of a paused container thaw it first:
              frozen tasks do not even die of SIGKILL on v1 (Docker does
              the same: it resumes a paused container it signals)
    refuse_if_paused  exec into a paused container: Docker's 409
    update    memory, cpus, pids, CPU shares and the memory reservation of a
              running container through its cgroup, and in the record (a
              restart keeps them); the restart policy
    top       ``ps`` of the processes in the container's cgroup

Each verb publishes its event (pause, unpause, restart, rename, update)
after the record says what the event reports.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from runtime import pids, procfs
from runtime.cgroups import CgroupFs
from runtime.errors import InvalidArgument, InvalidState, RuntimeFailure, Unavailable
from runtime.events import EventLog
from runtime.freezer import Freezer, locate
from runtime.launches import Launches
from runtime.records import CREATED, RUNNING, ContainerRecord, RecordStore
from runtime.reports import container_event
from runtime.signalling import Signaller
from runtime.spec import Limits, RestartPolicy, number

#: What ``top`` runs when no ``ps_args`` are given (Docker's default).
DEFAULT_PS_ARGS = "-ef"
PS_TIMEOUT = 10.0
#: The limits ``update`` changes on a running container.
UPDATABLE = ("memory_bytes", "cpus", "pids")
#: The ``Tuning`` knobs it changes: (v1 controller, v1 file, v2 file) each.
UPDATABLE_TUNING = {
    "cpu_shares": ("cpu", "cpu.shares", "cpu.weight"),
    "memory_reservation_bytes": ("memory", "memory.soft_limit_in_bytes", "memory.low"),
}


@dataclass(frozen=True)
class Top:
    """``ps`` output of the container's processes: titles and one row each."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


class Lifecycle:
    def __init__(
        self,
        records: RecordStore,
        launches: Launches,
        signaller: Signaller,
        events: EventLog,
        *,
        fs: CgroupFs | None = None,
        locate_cgroup: Callable[[int], tuple[str, str] | None] = locate,
    ) -> None:
        self.records = records
        self.launches = launches
        self.signaller = signaller
        self.events = events
        self.fs = fs or CgroupFs()
        self._locate = locate_cgroup

    # -- restart, rename -------------------------------------------------
    def restart(self, ref: str, timeout: float | None) -> ContainerRecord:
        record = self.records.resolve(ref)
        if record.status == RUNNING:
            self.thaw_for_signal(record.id)
            # Recorded before the stop, so an auto-remove container's exit
            # does not remove it (runtime/exits.py); the relaunch clears it.
            self.records.update(record.id, results={"restarting": True})
            try:
                self.signaller.stop(record.id, timeout)
            except BaseException:
                self.records.update(record.id, results={"restarting": None})
                raise
        if record.status == CREATED:
            started = self.launches.start_container(record.id)
        else:
            started = self.launches.relaunch(record.id)
        self.events.publish(container_event("restart", started))
        return started

    def rename(self, ref: str, name: str) -> ContainerRecord:
        record = self.records.resolve(ref)
        if name == record.name:
            return record
        renamed = self.records.update(record.id, name=name)
        self.events.publish(container_event("rename", renamed, oldName=record.name))
        return renamed

    # -- pause, unpause ---------------------------------------------------
    @staticmethod
    def _live_pid(record: ContainerRecord) -> int:
        """Its PID 1, checked against the recorded start time (never a
        process that reused the pid); ``InvalidState`` unless it runs."""
        if record.status != RUNNING or not pids.same_process(record.pid, record.pid_start_time):
            raise InvalidState(f"container {record.id} is not running")
        assert record.pid is not None
        return record.pid

    def _freezer(self, record: ContainerRecord) -> Freezer:
        where = self._locate(self._live_pid(record))
        if where is None:
            raise Unavailable(
                f"container {record.id} has no freezer cgroup of its own "
                "(no freezer controller mounted)"
            )
        return Freezer(self.fs, *where)

    def paused(self, record: ContainerRecord) -> bool:
        return record.status == RUNNING and bool(record.results.get("paused"))

    def pause(self, ref: str) -> ContainerRecord:
        record = self.records.resolve(ref)
        freezer = self._freezer(record)
        if self.paused(record) and freezer.frozen():
            raise InvalidState(f"container {record.id} is already paused")
        freezer.freeze()
        paused = self.records.update(record.id, results={"paused": True})
        self.events.publish(container_event("pause", paused))
        return paused

    def unpause(self, ref: str) -> ContainerRecord:
        record = self.records.resolve(ref)
        freezer = self._freezer(record)
        # The kernel is asked, not only the record: a crash between the
        # freeze and its record leaves a frozen container recorded as running.
        if not (self.paused(record) or freezer.frozen()):
            raise InvalidState(f"container {record.id} is not paused")
        freezer.thaw()
        running = self.records.update(record.id, results={"paused": False})
        self.events.publish(container_event("unpause", running))
        return running

    def thaw_for_signal(self, ref: str) -> None:
        """Thaw a paused container about to be signalled (no-op otherwise)."""
        record = self.records.resolve(ref)
        if self.paused(record):
            try:
                self.unpause(record.id)
            except InvalidState:
                pass  # it exited meanwhile, or was thawed by another request

    def refuse_if_paused(self, ref: str) -> None:
        record = self.records.resolve(ref)
        if self.paused(record):
            raise InvalidState(
                f"Container {record.id} is paused, unpause the container before exec"
            )

    # -- update -----------------------------------------------------------
    def update(
        self,
        ref: str,
        changes: Limits,
        restart_policy: RestartPolicy | None = None,
        tuning: Mapping[str, int] | None = None,
    ) -> ContainerRecord:
        """Set the limits of ``changes`` that are not ``None`` (of ``UPDATABLE``),
        the restart policy, and the ``tuning`` knobs of ``UPDATABLE_TUNING``:
        on a running container's cgroup first, then in its record."""
        record = self.records.resolve(ref)
        given = {k: getattr(changes, k) for k in UPDATABLE if getattr(changes, k) is not None}
        knobs: dict[str, Any] = dict(tuning or {})
        for name in set(knobs) - set(UPDATABLE_TUNING):
            raise InvalidArgument(f"tuning.{name}", "cannot be updated")
        if restart_policy is not None and restart_policy.name != "no" and record.spec.auto_remove:
            # Docker's wording (daemon/update.go).
            raise InvalidArgument(
                "restart_policy",
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            )
        if not given and not knobs and restart_policy is None:
            return record
        spec = record.spec
        limits = replace(spec.limits, **given)
        new_tuning = replace(spec.options.tuning, **knobs)
        if record.status == RUNNING:
            dirs = _controller_dirs(self._live_pid(record))
            _write_limits(self.fs, dirs, spec.limits, limits)
            _write_tuning(self.fs, dirs, knobs)
        spec = replace(
            spec,
            limits=limits,
            options=replace(spec.options, tuning=new_tuning),
            restart_policy=restart_policy or spec.restart_policy,
        )
        updated = self.records.update(record.id, spec=spec)
        self.events.publish(container_event("update", updated))
        return updated

    # -- top --------------------------------------------------------------
    def top(self, ref: str, ps_args: str | None = None) -> Top:
        record = self.records.resolve(ref)
        members = set(_cgroup_pids(self.fs, self._live_pid(record)))
        args = (ps_args or DEFAULT_PS_ARGS).split()
        try:
            done = subprocess.run(
                ["ps", *args], capture_output=True, text=True, timeout=PS_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise Unavailable("ps did not answer in time") from err
        if done.returncode != 0:
            raise InvalidArgument("ps_args", f"ps {' '.join(args)}: {done.stderr.strip()}")
        return parse_ps(done.stdout, members)


def parse_ps(output: str, members: set[int]) -> Top:
    """The rows of ``ps`` output whose PID is in ``members``; the last
    column takes the rest of the line (a command has spaces)."""
    lines = output.splitlines()
    if not lines:
        raise InvalidArgument("ps_args", "ps printed nothing")
    titles = tuple(lines[0].split())
    if "PID" not in titles:
        raise InvalidArgument("ps_args", "Couldn't find PID field in ps output")
    column = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[column])
        except (IndexError, ValueError):
            continue
        if pid in members:
            rows.append(tuple(fields))
    return Top(titles, tuple(rows))


def _controller_dirs(pid: int) -> dict[str, str]:
    """controller -> the directory of ``pid``'s cgroup in its hierarchy
    (``""``: the unified one), from /proc/PID/cgroup and the mounts."""
    mounts = procfs.cgroup_mounts()
    dirs = {}
    for hierarchy, path in procfs.cgroups(pid).items():
        if hierarchy in mounts:
            for controller in hierarchy.split(",") if hierarchy else [""]:
                dirs[controller] = mounts[hierarchy].rstrip("/") + path
    return dirs


def _cgroup_pids(fs: CgroupFs, pid: int) -> list[int]:
    dirs = _controller_dirs(pid)
    directory = dirs.get("pids") or dirs.get("memory") or dirs.get("")
    if directory is None:
        return [pid]
    try:
        return [int(p) for p in fs.read(os.path.join(directory, "cgroup.procs")).split()]
    except FileNotFoundError:
        return []


def limit_writes(dirs: dict[str, str], old: Limits, new: Limits) -> list[tuple[str, str]]:
    """The (file, value) writes that take a cgroup from ``old`` to ``new``,
    in an order the kernel accepts: on v1 ``memory.limit_in_bytes`` may not
    exceed ``memory.memsw.limit_in_bytes``, so memsw goes first when the
    limit grows and last when it shrinks."""
    writes: list[tuple[str, str]] = []
    unlimited = new.memory_bytes is None
    if "" in dirs and "memory" not in dirs:  # v2
        base = dirs[""]
        if new.memory_bytes != old.memory_bytes:
            writes.append((f"{base}/memory.max", "max" if unlimited else str(new.memory_bytes)))
        if new.pids != old.pids:
            writes.append((f"{base}/pids.max", "max" if new.pids is None else str(new.pids)))
        if new.cpus != old.cpus:
            quota = "max" if new.cpus is None else str(max(1000, round(new.cpus * 100_000)))
            writes.append((f"{base}/cpu.max", f"{quota} 100000"))
        return writes
    if new.memory_bytes != old.memory_bytes and "memory" in dirs:
        value = "-1" if unlimited else str(new.memory_bytes)
        memory = [(f"{dirs['memory']}/memory.limit_in_bytes", value)]
        memsw = [(f"{dirs['memory']}/memory.memsw.limit_in_bytes", value)]
        grows = old.memory_bytes is not None and (
            new.memory_bytes is None or new.memory_bytes > old.memory_bytes
        )
        writes += memsw + memory if grows else memory + memsw
    if new.pids != old.pids and "pids" in dirs:
        writes.append((f"{dirs['pids']}/pids.max", "max" if new.pids is None else str(new.pids)))
    if new.cpus != old.cpus and "cpu" in dirs:
        quota = "-1" if new.cpus is None else str(max(1000, round(new.cpus * 100_000)))
        writes.append((f"{dirs['cpu']}/cpu.cfs_period_us", "100000"))
        writes.append((f"{dirs['cpu']}/cpu.cfs_quota_us", quota))
    return writes


_FIELD_OF_FILE = {"memory": "memory_bytes", "pids": "pids", "cpu": "cpus"}


def tuning_writes(dirs: dict[str, str], knobs: Mapping[str, int]) -> list[tuple[str, str]]:
    """The (file, value) writes of ``UPDATABLE_TUNING`` knobs; on v2 the
    shares become a weight as at create (runtime/cgroups/v2.py)."""
    writes = []
    v2 = "" in dirs and "memory" not in dirs
    for name, value in knobs.items():
        controller, v1_file, v2_file = UPDATABLE_TUNING[name]
        if v2:
            if name == "cpu_shares":
                value = 1 + ((value - 2) * 9999) // 262142  # runc's shares -> weight
            writes.append((f"{dirs['']}/{v2_file}", str(value)))
        elif controller in dirs:
            writes.append((f"{dirs[controller]}/{v1_file}", str(value)))
    return writes


def _write_tuning(fs: CgroupFs, dirs: dict[str, str], knobs: Mapping[str, int]) -> None:
    for path, value in tuning_writes(dirs, knobs):
        try:
            fs.write(path, value)
        except OSError as err:
            raise RuntimeFailure(f"{path}: {os.strerror(err.errno or errno.EIO)}") from err


def _write_limits(fs: CgroupFs, dirs: dict[str, str], old: Limits, new: Limits) -> None:
    for path, value in limit_writes(dirs, old, new):
        if "memsw" in path and not fs.exists(path):
            continue  # no swap accounting: memory alone is the limit
        try:
            fs.write(path, value)
        except OSError as err:
            name = os.path.basename(path)
            field = _FIELD_OF_FILE[name.split(".")[0]]
            if err.errno == errno.EBUSY:
                raise InvalidArgument(
                    field, f"{number(getattr(new, field))} is below what the container uses now"
                ) from err
            raise RuntimeFailure(f"{path}: {os.strerror(err.errno or errno.EIO)}") from err
