"""A container's options beyond its command, root and limits: frozen dataclasses.

    Ulimit        one setrlimit(2) resource by its Docker name (``nofile``), soft and hard
    Device        a host device node shown in the container, and the devices
                  cgroup rule that lets it be opened
    Tuning        cgroup knobs past the limits: CPU shares, CFS quota and
                  period, cpuset, swap, reservation, swappiness, device rules
    Healthcheck   a command run now and then in the container (runtime/health.py)
    Options       all of them plus how it is stopped (signal, grace period),
                  the host namespaces it shares (``pid``, ``ipc``, ``uts``),
                  /dev/shm's size, supplementary groups, sysctls, its log driver
    check_sysctl  a sysctl a container may set: only those of its own namespaces

Both HTTP layers fill ``CreateRequest.options`` (app/commands.py); the
planner checks what only the host knows (the CPUs and NUMA nodes, the device
nodes) and copies it into ``ContainerSpec.options``; the launcher applies
the cgroup part (runtime/cgroups/), the child the rest (runtime/child.py,
runtime/rootfs.py).  Every check here raises ``InvalidField`` naming the
field, so a bad value is a 4xx in both APIs.
"""

from __future__ import annotations

import dataclasses
import re
import resource
from collections.abc import Mapping

from runtime.errors import InvalidArgument
from runtime.signals import parse_signal
from runtime.spec import InvalidField

#: Docker's ``--ulimit`` names -> setrlimit(2) resources (getrlimit(2) lists them).
RLIMITS: dict[str, int] = {
    "as": resource.RLIMIT_AS,
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,  # RLIMIT_LOCKS, <asm-generic/resource.h>: Python lacks the name
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}
#: RLIM_INFINITY as Docker writes it (-1).
UNLIMITED = -1

#: Namespaces a container may share with the host instead of having its own.
HOST_NAMESPACES = ("pid", "ipc", "uts")
LOG_DRIVERS = ("json-file", "local", "none")
#: Docker's HostConfig.Isolation on Linux: the one kind there is.
ISOLATIONS = ("", "default")
#: The volume driver there is (runtime/volumes.py); a plugin's name otherwise.
LOCAL_DRIVER = "local"
_DRIVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$")

#: sysctls that belong to a namespace the container has (runc's and Docker's
#: list, sysctl(8)): writing one changes only the container's copy.
IPC_SYSCTLS = (
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
)
_SYSCTL_NAME = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_GROUP = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_DEVICE_RULE = re.compile(r"^[abc] (\d+|\*):(\d+|\*) [rwm]{1,3}$")


def check_sysctl(name: str, host_namespaces: tuple[str, ...]) -> None:
    """Only sysctls of the container's own IPC, network or UTS namespace
    (proc(5) /proc/sys): any other would change the host's."""
    if not _SYSCTL_NAME.match(name):
        raise InvalidField(f"sysctls.{name}", "not a sysctl name")
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        if "ipc" in host_namespaces:
            raise InvalidField(f"sysctls.{name}", "the IPC namespace is the host's")
        return
    if name.startswith("net."):
        return
    if name == "kernel.domainname":
        if "uts" in host_namespaces:
            raise InvalidField(f"sysctls.{name}", "the UTS namespace is the host's")
        return
    raise InvalidField(
        f"sysctls.{name}",
        "not namespaced: only net.*, fs.mqueue.*, kernel.domainname and the IPC "
        f"ones ({', '.join(IPC_SYSCTLS)}) may be set",
    )


def parse_cpuset(text: str, field: str) -> set[int]:
    """``0-2,4`` -> {0, 1, 2, 4} (cpuset(7)'s list format)."""
    if not _CPUSET.match(text):
        raise InvalidField(field, f"{text!r} is not a list such as 0-2,4")
    result: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise InvalidField(field, f"{part!r}: a range goes upwards")
        result.update(range(first, last + 1))
    return result


@dataclasses.dataclass(frozen=True)
class Ulimit:
    """setrlimit(2) of ``name`` (a key of ``RLIMITS``); -1 is unlimited."""

    name: str
    soft: int
    hard: int

    def __post_init__(self) -> None:
        field = f"ulimits.{self.name}"
        if self.name not in RLIMITS:
            raise InvalidField(field, f"unknown; one of {', '.join(RLIMITS)}")
        for value in (self.soft, self.hard):
            if isinstance(value, bool) or not isinstance(value, int) or value < UNLIMITED:
                raise InvalidField(field, "soft and hard are numbers >= 0, or -1 for unlimited")
        if self.hard != UNLIMITED and (self.soft == UNLIMITED or self.soft > self.hard):
            raise InvalidField(field, f"soft {self.soft} is above hard {self.hard}")


@dataclasses.dataclass(frozen=True)
class Device:
    """``host`` (a device node) made available at ``target`` with
    ``permissions`` (``r``, ``w``, ``m`` of the devices cgroup)."""

    host: str
    target: str
    permissions: str = "rwm"

    def __post_init__(self) -> None:
        if not self.host.startswith("/dev/") or not self.target.startswith("/dev/"):
            raise InvalidField("devices", f"{self.host}:{self.target}: both must be under /dev/")
        if ".." in self.host.split("/") + self.target.split("/"):
            raise InvalidField("devices", f"{self.host}:{self.target}: no '..'")
        if not self.permissions or set(self.permissions) - set("rwm"):
            raise InvalidField("devices", f"permissions {self.permissions!r}: some of r, w, m")


@dataclasses.dataclass(frozen=True)
class Tuning:
    """cgroup knobs past ``Limits`` (Docker's HostConfig names in brackets).

    cpu_shares        relative CPU weight [CpuShares] (cpu.shares; v2 cpu.weight)
    cpu_quota_us,     CFS bandwidth [CpuQuota, CpuPeriod] (cpu.cfs_quota_us and
    cpu_period_us     cpu.cfs_period_us; v2 cpu.max), instead of ``limits.cpus``
    cpuset_cpus/mems  CPUs and NUMA nodes it may use [CpusetCpus, CpusetMems]
    memory_swap_bytes memory + swap [MemorySwap]; -1 unlimited swap
    memory_reservation_bytes  the soft limit [MemoryReservation]
    memory_swappiness 0-100 [MemorySwappiness] (v1 only)
    device_rules      extra devices cgroup rules, ``c 1:3 rwm`` [DeviceCgroupRules]
    """

    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    memory_swap_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    memory_swappiness: int | None = None
    device_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bounds = {
            # cpu.shares: the kernel clamps to 2..262144 (sched/core.c).
            "cpu_shares": (2, 262144),
            # sched-bwc: quota at least 1 ms; the period between 1 ms and 1 s.
            "cpu_quota_us": (1000, 1 << 40),
            "cpu_period_us": (1000, 1_000_000),
            "memory_reservation_bytes": (4 << 20, 1 << 40),
            "memory_swappiness": (0, 100),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise InvalidField(f"tuning.{name}", f"must be between {low} and {high}")
        swap = self.memory_swap_bytes
        if swap is not None and swap != UNLIMITED and swap < 4 << 20:
            raise InvalidField("tuning.memory_swap_bytes", "at least 4 MiB, or -1 for unlimited")
        for name in ("cpuset_cpus", "cpuset_mems"):
            value = getattr(self, name)
            if value is not None:
                parse_cpuset(value, f"tuning.{name}")
        for rule in self.device_rules:
            if not _DEVICE_RULE.match(rule):
                raise InvalidField(
                    "tuning.device_rules", f"{rule!r}: type major:minor access, as 'c 1:3 rwm'"
                )

    @property
    def needs_cgroup(self) -> bool:
        return any(
            getattr(self, f.name) not in (None, ())
            for f in dataclasses.fields(self)
            if f.name != "device_rules"
        )


NO_TUNING = Tuning()


@dataclasses.dataclass(frozen=True)
class Healthcheck:
    """Docker's ``HEALTHCHECK``: ``command`` (argv, run as an exec) every
    ``interval_seconds``; a run that exits non-zero or outlasts
    ``timeout_seconds`` fails; ``retries`` failures in a row make the
    container unhealthy; failures during ``start_period_seconds`` do not
    count, and checks then come every ``start_interval_seconds``."""

    command: tuple[str, ...]
    interval_seconds: float = 30.0
    timeout_seconds: float = 30.0
    retries: int = 3
    start_period_seconds: float = 0.0
    start_interval_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.command or any("\0" in arg for arg in self.command):
            raise InvalidField("healthcheck.command", "an argv without NUL bytes")
        for name in ("interval_seconds", "timeout_seconds", "start_interval_seconds"):
            if not 0.01 <= getattr(self, name) <= 24 * 3600:
                raise InvalidField(f"healthcheck.{name}", "between 0.01 and 86400 seconds")
        if not 0 <= self.start_period_seconds <= 24 * 3600:
            raise InvalidField("healthcheck.start_period_seconds", "between 0 and 86400")
        if not 1 <= self.retries <= 1000:
            raise InvalidField("healthcheck.retries", "between 1 and 1000")


#: What ``stop`` sends first when neither the create nor its image names a signal.
DEFAULT_STOP_SIGNAL = "SIGTERM"

#: /dev/shm's size without ``Options.shm_size_bytes``: Docker's 64 MiB.
SHM_SIZE = 64 << 20


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything a container may ask for past its command, root and limits.

    stop_signal      what ``stop`` sends first (a name such as ``SIGTERM``)
    stop_timeout     seconds ``stop`` waits before SIGKILL when it is not told
    host_namespaces  of ``pid``, ``ipc``, ``uts``: shared with the host, not made
    shm_size_bytes   the size of /dev/shm (default 64 MiB)
    group_add        supplementary groups of the command: ids, or names from the
                     container's /etc/group (looked up in the child, after pivot_root)
    ulimits          setrlimit(2) of each, after ``limits.nofile``/``fsize_bytes``
    sysctls          written in the child, in its own namespaces (``check_sysctl``)
    devices          host device nodes shown in the container
    tuning           the cgroup knobs
    log_driver       ``json-file`` and ``local`` keep the output (both are the
                     service's log files), ``none`` keeps nothing
    log_options      the driver's options, shown back by inspect
    healthcheck      what runtime/health.py runs to tell healthy from not
    no_healthcheck   the image's HEALTHCHECK is not run either (``--no-healthcheck``)
    env_unset        names the command must not see, not even from the image's Env
                     (Docker's bare ``NAME`` in ``Env``); shown back as given
    volume_driver    the driver of the volumes this create makes (``local``, the
                     only one; another fails only if a volume is made)
    isolation        ``default`` or empty, shown back ([Isolation]: Linux has one)
    volumes_from     the containers whose mounts it took, ``ref[:ro|rw]`` as given
    tmpfs_given      the tmpfs mounts' options as given (``{"/run": "size=3M"}``),
                     shown back as Docker does; the mounts carry their meaning
    """

    stop_signal: str = DEFAULT_STOP_SIGNAL
    stop_timeout: int | None = None
    host_namespaces: tuple[str, ...] = ()
    shm_size_bytes: int | None = None
    group_add: tuple[str, ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    devices: tuple[Device, ...] = ()
    tuning: Tuning = dataclasses.field(default_factory=Tuning)
    log_driver: str = "json-file"
    log_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    no_healthcheck: bool = False
    env_unset: tuple[str, ...] = ()
    volume_driver: str = ""
    isolation: str = ""
    volumes_from: tuple[str, ...] = ()
    tmpfs_given: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_given()
        try:
            parse_signal(self.stop_signal, "stop_signal")
        except InvalidArgument:
            raise InvalidField("stop_signal", f"unknown signal {self.stop_signal!r}") from None
        if self.stop_timeout is not None and not -1 <= self.stop_timeout <= 3600:
            raise InvalidField("stop_timeout", "must be between -1 and 3600 seconds")
        for name in self.host_namespaces:
            if name not in HOST_NAMESPACES:
                raise InvalidField("host_namespaces", f"{name!r}: one of {HOST_NAMESPACES}")
        if self.shm_size_bytes is not None and not 4096 <= self.shm_size_bytes <= 1 << 40:
            raise InvalidField("shm_size_bytes", "must be between 4096 and 1 TiB")
        for group in self.group_add:
            if not _GROUP.match(group) or (group.isdigit() and int(group) > 2**32 - 2):
                raise InvalidField("group_add", f"{group!r} is not a group id or name")
        for name, value in self.sysctls.items():
            check_sysctl(name, self.host_namespaces)
            if "\0" in value or "\n" in value:
                raise InvalidField(f"sysctls.{name}", "a value on one line")
        names = [u.name for u in self.ulimits]
        if len(set(names)) != len(names):
            raise InvalidField("ulimits", "a name given twice")
        if self.log_driver not in LOG_DRIVERS:
            # Docker's own wording (daemon/logger/factory.go).
            raise InvalidField(
                "log_driver", f"logger: no log driver named '{self.log_driver}' is registered"
            )

    def _check_given(self) -> None:
        if self.isolation not in ISOLATIONS:
            # Docker's wording (daemon/daemon_unix.go verifyPlatformContainerSettings).
            raise InvalidField(
                "isolation", f"invalid isolation {self.isolation!r}: Linux supports only 'default'"
            )
        if self.volume_driver and not _DRIVER.match(self.volume_driver):
            raise InvalidField("volume_driver", f"{self.volume_driver!r} is not a driver name")
        for name in self.env_unset:
            if not name or "=" in name or "\0" in name:
                raise InvalidField("env_unset", f"{name!r} is not a variable name")

    def shares(self, namespace: str) -> bool:
        """Does the container use the host's ``namespace`` (``pid``, ``ipc``, ``uts``)?"""
        return namespace in self.host_namespaces
