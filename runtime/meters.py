"""What the runtime measures, handed to whoever counts it.

    Meter        the hooks: a launch answered, a launch failed at a step,
                 a record written; the base class ignores them all
    setup_step   a failed step's name, bounded to the known ones (else ``other``)
    exit_outcome how a container ended, from its ``die`` event's attributes

The runtime calls a ``Meter`` and knows nothing of Prometheus:
``app/metrics.py`` subclasses it and turns the calls into metrics (runtime/
keeps to the standard library and the kernel; how numbers are exposed is the
HTTP side's business).  Counts of containers and exits are not hooks: they
are fed by a listener on the event log (``EventLog.listeners``), the one
place where every start and exit is reported already.

Hooks run on the thread that measured (a worker, the launcher reader) and
must not block.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Meter:
    """No-op hooks; ``Runtime.open(meter=...)`` takes one that counts."""

    def launch_replied(self, replied_ns: int) -> None:
        """A container's child exec'd: the launcher's reply came at
        ``replied_ns`` (``time.monotonic_ns()``), on the launching thread."""

    def launch_failed(self, step: str) -> None:
        """A launch failed at ``step`` (bounded: ``setup_step``)."""

    def record_written(self, seconds: float) -> None:
        """A RecordStore write (a transaction) took ``seconds``."""


#: The setup steps named in runtime/child.py and runtime/rootfs.py, plus
#: the launcher's own failures; a step outside them is ``other`` (a test
#: reads those files and checks each literal name is here).
SETUP_STEPS = frozenset(
    {
        "make mounts private",
        "mount /proc",
        "mount /sys",
        "mask /proc and /sys paths",
        "sethostname",
        "bring up lo",
        "wait for the cgroup join",
        "set rlimits",
        "reset signals",
        "set up stdio",
        "close fds",
        "open a terminal",
        "set controlling terminal",
        "clear ambient capabilities",
        "load seccomp filter",
        "set capabilities",
        "set no_new_privs",
        "become root of the user namespace",
        "enter the container's layer dir",
        "pivot_root",
        "mount /dev",
        "mount /dev/pts",
        "mount /dev/shm",
        "make /dev links",
        "make /dev nodes",
        "join the network namespace",
        "make the root read-only",
        "drop bounding capabilities",
        "setup",
        "launcher",
    }
)
#: Steps whose name carries a path or a command: counted by family, so a
#: label never holds a user's path.  Longest prefix first.
STEP_FAMILIES = (
    ("mount tmpfs ", "mount tmpfs"),
    ("create workdir ", "create workdir"),
    ("bind /dev/", "bind device"),
    ("mount ", "mount"),
    ("mask ", "mask"),
    ("hide ", "hide"),
    ("exec ", "exec"),
)
OTHER = "other"
_BOUNDED = SETUP_STEPS | {family for _, family in STEP_FAMILIES} | {OTHER}


def setup_step(step: str | None) -> str:
    """``step`` when it is a known name, its family when it names a path
    or a command (``exec /bin/x`` → ``exec``), else ``other``; a bounded
    name is its own bound."""
    if not step:
        return OTHER
    if step in _BOUNDED:
        return step
    for prefix, family in STEP_FAMILIES:
        if step.startswith(prefix):
            return family
    return OTHER


class Outcome(enum.StrEnum):
    EXIT_0 = "exit_0"
    EXIT_NONZERO = "exit_nonzero"
    SIGNAL = "signal"
    OOM = "oom"
    TIMEOUT = "timeout"
    #: No exit status: the launcher that ran it is gone, or it never ran.
    LOST = "lost"


def exit_outcome(attributes: Mapping[str, str]) -> Outcome:
    """How a container ended, from its ``die`` event.

    The cause before the symptom: an OOM kill and a timeout both end in
    SIGKILL, and count as ``oom`` and ``timeout``, not ``signal``."""
    if attributes.get("oom_killed") == "true":
        return Outcome.OOM
    if attributes.get("timed_out") == "true":
        return Outcome.TIMEOUT
    if "signal" in attributes:
        return Outcome.SIGNAL
    code = attributes.get("exit_code")
    if code is None:
        return Outcome.LOST
    return Outcome.EXIT_0 if code == "0" else Outcome.EXIT_NONZERO
