"""The default seccomp filter, in the spirit of Docker's default profile.

Docker's profile (moby ``profiles/seccomp/default.json``) is an allow list
of about 350 syscalls.  Ours is the other way round: everything is allowed
except the calls below, which answer ``EPERM`` (``ENOSYS`` for clone3, so
that glibc falls back to clone(2), whose flags a filter can see).  Each
entry is something a container has no business doing: changing the
kernel, the clock, the mounts, the namespaces, or reading another
process's memory.  Most of them already need a capability the container
does not have; the filter is the second wall, as in Docker.

The filter is built with libseccomp through ``pyseccomp`` (a ctypes
binding with libseccomp's own Python API) for the native architecture
only: a syscall made through another ABI (i386 ``int 0x80``, x32) is not
in the filter and kills the thread (libseccomp's default bad-arch action),
so a 32-bit detour cannot skip the list.

ptrace: allowed, as Docker allows it on kernels from 4.8 on (before 4.8 a
tracer could change a syscall after the filter had seen it).  The PID
namespace hides every process outside the container, so only the
container's own processes can be traced.

It is loaded last, just before execve, after the switch of user, so the
setup steps themselves are not filtered; ``"seccomp": "unconfined"`` in the
spec skips it.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass

import pyseccomp

from runtime import libc
from runtime.namespaces import Namespace

#: Denied whatever the arguments.
DENIED: tuple[str, ...] = (
    # mounts and the root (mount_namespaces(7)); the new mount API too
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # namespaces: no new ones, no joining others' (namespaces(7))
    "unshare",
    "setns",
    # the kernel itself
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "uselib",
    "_sysctl",
    "nfsservctl",
    # the kernel keyring is not namespaced (keyrings(7))
    "keyctl",
    "add_key",
    "request_key",
    # eBPF and perf: kernel attack surface and a window on other processes
    "bpf",
    "perf_event_open",
    # the clock is the host's (time(7))
    "clock_settime",
    "settimeofday",
    "adjtimex",
    "clock_adjtime",
    # file handles bypass the mount's view (the "shocker" escape, 2014)
    "open_by_handle_at",
    "name_to_handle_at",
    # userfaultfd makes kernel races easy to win
    "userfaultfd",
    # io_uring: its own syscall path, outside this filter (Docker denies it since 25.0)
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # reading or comparing other processes' state beyond ptrace's rules
    "kcmp",
    "pidfd_getfd",
)

#: personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
#: UNAME26|PER_LINUX32, and 0xffffffff (which only queries).
PERSONALITY_ALLOWED: tuple[int, ...] = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_PER_LINUX32_BIT = 3
_UNAME26_BIT = 17

#: clone(2) flags that would create a namespace.
NEW_NAMESPACES = (
    Namespace.NEWNS
    | Namespace.NEWCGROUP
    | Namespace.NEWUTS
    | Namespace.NEWIPC
    | Namespace.NEWUSER
    | Namespace.NEWPID
    | Namespace.NEWNET
)
#: CLONE_NEWTIME shares its bit with CSIGNAL's range; it is only valid for
#: unshare/clone3, both denied here.


@dataclass(frozen=True)
class Rule:
    """One line of the profile, for the docs and the tests."""

    syscall: str
    action: str
    when: str = ""


def _known(names: Iterable[str]) -> list[str]:
    """Names this libseccomp knows for the native architecture."""
    known = []
    for name in names:
        try:
            pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        except (ValueError, OSError):
            continue
        known.append(name)
    return known


def rules() -> list[Rule]:
    """The profile in words: what ``build`` puts in the filter."""
    listed = [Rule(name, "EPERM") for name in _known(DENIED)]
    if not kernel_allows_ptrace_safely():
        listed.append(Rule("ptrace", "EPERM", "kernel older than 4.8"))
    listed.append(Rule("clone", "EPERM", f"flags & {int(NEW_NAMESPACES):#x}"))
    listed.append(Rule("clone3", "ENOSYS"))
    allowed = ", ".join(f"{v:#x}" for v in PERSONALITY_ALLOWED)
    listed.append(Rule("personality", "EPERM", f"persona not in {allowed}"))
    return listed


def build() -> pyseccomp.SyscallFilter:
    """The default filter, ready to ``load()``."""
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    eperm = pyseccomp.ERRNO(errno.EPERM)
    for name in _known(DENIED):
        flt.add_rule(eperm, name)
    if not kernel_allows_ptrace_safely():
        flt.add_rule(eperm, "ptrace")
    # clone(2) on x86_64 and aarch64 takes the flags as its first argument;
    # one rule per namespace bit, since rules for one syscall are OR-ed.
    for bit in Namespace:
        if bit & NEW_NAMESPACES:
            flt.add_rule(eperm, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, int(bit), int(bit)))
    # clone3(2) passes its flags in a struct a filter cannot read; ENOSYS
    # makes glibc and others fall back to clone(2) (Docker does the same).
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    for arg in personality_denials():
        flt.add_rule(eperm, "personality", arg)
    return flt


def personality_denials() -> list[pyseccomp.Arg]:
    """Comparisons, one per rule, that together match every persona Docker denies.

    libseccomp takes one comparison per argument in a rule and cannot say
    "not in", so the denied values are covered by bit patterns instead.
    The allowed values are 0 and 0xffffffff and the values whose only bits
    are 3 (PER_LINUX32) and 17 (UNAME26).  A 32-bit value outside that set
    has a set bit other than 3 and 17 and a clear bit; walking up
    (cyclically) from such a set bit to the first clear bit ends on a set
    bit b followed by a clear bit: if b is neither 3 nor 17, the pattern
    "b set, b+1 clear" matches; if b is 3 (or 17), the run of set bits is
    longer than one, so bit 2 (16) is set and 4 (18) clear.  The allowed
    values match none of these patterns.
    """
    special = {_PER_LINUX32_BIT, _UNAME26_BIT}
    patterns: list[tuple[int, int]] = []  # (bit that is set, bit that is clear)
    for bit in range(32):
        if bit not in special:
            patterns.append((bit, (bit + 1) % 32))
    for bit in special:
        patterns.append((bit - 1, bit + 1))
    args = [
        pyseccomp.Arg(0, pyseccomp.MASKED_EQ, (1 << one) | (1 << zero), 1 << one)
        for one, zero in patterns
    ]
    # The kernel reads the persona as an unsigned int; deny wider values outright.
    args.append(pyseccomp.Arg(0, pyseccomp.GT, 0xFFFFFFFF))
    return args


@functools.cache
def compiled() -> bytes:
    """``build()`` as the kernel takes it: classic BPF (seccomp_export_bpf(3)).

    Building the filter costs ≈1.4 ms of libseccomp work (docs/performance.md),
    more than all the other set-up steps of a child together.  The launcher
    compiles it once at start-up (``warm``) and every child it clones
    inherits the bytes, so a child only hands them to the kernel."""
    # A memfd, not a file: a child that compiles for itself may already be
    # in the container's root, where no file of ours belongs.
    with os.fdopen(os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC), "w+b") as out:
        build().export_bpf(out)
        out.seek(0)
        return out.read()


def warm() -> None:
    """Compile the filter now, in the parent, so children do not each compile it."""
    compiled()


def load(no_new_privs: bool = True) -> None:
    """Load the default filter into the calling process.

    Without ``no_new_privs`` the caller needs CAP_SYS_ADMIN (seccomp(2));
    with it, no_new_privs is set first, as libseccomp's ``seccomp_load``
    does by default (``SCMP_FLTATR_CTL_NNP``).
    """
    program = compiled()
    if no_new_privs:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    libc.seccomp_set_filter(program)


def kernel_allows_ptrace_safely() -> bool:
    """Linux >= 4.8 runs the seccomp check again after a tracer's changes."""
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return (major, minor) >= (4, 8)
