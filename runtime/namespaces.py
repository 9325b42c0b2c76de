"""Namespace and clone(2) flags, by name.

The only place in the project where the numeric values of ``CLONE_*`` flags
live (see clone(2) and <linux/sched.h>).  Everything else says
``Namespace.PID`` and gets ``"NEWPID"`` back when printing.
"""

from __future__ import annotations

import enum
import signal


class Namespace(enum.IntFlag):
    """The ``CLONE_NEW*`` flags; each also names a file in ``/proc/PID/ns``."""

    NEWNS = 0x00020000  # mount
    NEWCGROUP = 0x02000000
    NEWUTS = 0x04000000
    NEWIPC = 0x08000000
    NEWUSER = 0x10000000
    NEWPID = 0x20000000
    NEWNET = 0x40000000

    @property
    def proc_name(self) -> str:
        """The entry under ``/proc/PID/ns/`` for this namespace."""
        return _PROC_NAMES[self]


_PROC_NAMES = {
    Namespace.NEWNS: "mnt",
    Namespace.NEWCGROUP: "cgroup",
    Namespace.NEWUTS: "uts",
    Namespace.NEWIPC: "ipc",
    Namespace.NEWUSER: "user",
    Namespace.NEWPID: "pid",
    Namespace.NEWNET: "net",
}

# clone(2): "CLONE_PIDFD (since Linux 5.2) ... a PID file descriptor referring
# to the child process is allocated and placed at the location pointed to by
# parent_tid".  We signal and wait through it, so a recycled pid is never hit.
CLONE_PIDFD = 0x00001000

# clone(2): "CLONE_PARENT ... the parent of the new child will be the same as
# that of the calling process": the warm pool's zygote clones children whose
# parent is the launcher (runtime/launcher/zygote.py), as runc's nsexec does.
CLONE_PARENT = 0x00008000

#: The five namespaces of the mydocker-c tutorial.
DEFAULT_NAMESPACES = (
    Namespace.NEWNS | Namespace.NEWPID | Namespace.NEWUTS | Namespace.NEWNET | Namespace.NEWIPC
)


#: Docker's ``--pid``/``--ipc``/``--uts host``: the namespace not made (runtime/options.py).
HOST_SHAREABLE = {"pid": Namespace.NEWPID, "ipc": Namespace.NEWIPC, "uts": Namespace.NEWUTS}


def clone_flags(namespaces: Namespace) -> int:
    """Flags for clone(2): the namespaces, a pidfd, and SIGCHLD as exit signal.

    The low byte of the flags is the signal the parent gets when the child
    dies; with SIGCHLD the child is an ordinary child for wait(2), which is
    why ``waitpid(..., __WCLONE)`` answers ECHILD for it (docs/architecture.md).
    """
    return int(namespaces) | CLONE_PIDFD | int(signal.SIGCHLD)


def describe(flags: int) -> str:
    """``"NEWNS|NEWPID|PIDFD|SIGCHLD"`` for a flag word, as nsjail logs them."""
    names = [ns.name or "" for ns in Namespace if flags & ns]
    if flags & CLONE_PIDFD:
        names.append("PIDFD")
    if flags & CLONE_PARENT:
        names.append("PARENT")
    exit_signal = flags & 0xFF
    if exit_signal:
        names.append(signal.Signals(exit_signal).name)
    return "|".join(names)
