"""The default seccomp profile: Docker's allow list, built with libseccomp.

The rule (moby ``profiles/seccomp/default.json``, whose semantics this
follows; the table below is ours): a syscall is allowed only if an entry of
``TABLE`` allows it for this container; anything else answers ``EPERM``
(Docker's ``defaultErrnoRet``), including syscalls newer than the table.

Map of the module:

``Entry``, ``Cmp``   one line of the table: names, and the conditions under
                     which it applies (a capability the container has or
                     lacks, the native architecture, a kernel version) and
                     the argument comparisons that must all hold
``ALWAYS``           the ~360 syscalls every container may make
``TABLE``            ``ALWAYS`` plus the conditional entries: clone without
                     namespace flags, clone3 -> ENOSYS, personality's five
                     values, socket without AF_ALG/AF_VSOCK, per-arch calls,
                     and what each capability adds (``CAPABILITY_ADDS``)
``ARCHES``           native architecture -> the ABIs the filter covers
                     (x86_64: x86_64, i386, x32; aarch64: aarch64, arm)
``entries``, ``rules``   the table resolved for a capability set, as data and in words
``build``, ``export``    a libseccomp filter for a capability set, and its BPF bytes
``reference``, ``compact``   libseccomp's program, and the same decisions in
                     a third of its length (runtime/security/seccompbpf.py)
``compiled``, ``prepare``, ``load``   the BPF cached per relevant capability
                     set in the launcher (children inherit it), and loading it

Stricter than Docker, kept from the deny list this profile replaced:
``adjtimex``/``clock_adjtime`` need CAP_SYS_TIME (the clock is the host's,
time(7)) and ``name_to_handle_at`` needs CAP_DAC_READ_SEARCH, like its pair
``open_by_handle_at`` (the 2014 "shocker" escape used the pair).

It is loaded last, just before execve (runtime/child.py), so the setup
steps are not filtered; ``"seccomp": "unconfined"`` in the spec skips it.
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
from runtime.security import seccompbpf
from runtime.spec import DEFAULT_CAPABILITIES, Security

#: seccomp_syscall_resolve_name(3): what it returns for a name it does not know.
_NR_SCMP_ERROR = -1

#: seccomp_rule_add(3) comparison operators, by the names the table uses.
_OPS = {
    "EQ": pyseccomp.EQ,
    "LT": pyseccomp.LT,
    "GT": pyseccomp.GT,
    "MASKED_EQ": pyseccomp.MASKED_EQ,
}


@dataclass(frozen=True)
class Cmp:
    """``args[index] <op> value`` (for MASKED_EQ: ``args[index] & mask == value``)."""

    index: int
    op: str
    value: int
    mask: int = 0

    def arg(self) -> pyseccomp.Arg:
        if self.op == "MASKED_EQ":
            # libseccomp takes the mask first, then the value (seccomp_rule_add(3)).
            return pyseccomp.Arg(self.index, _OPS[self.op], self.mask, self.value)
        return pyseccomp.Arg(self.index, _OPS[self.op], self.value)

    def __str__(self) -> str:
        if self.op == "MASKED_EQ":
            return f"arg{self.index} & {self.mask:#x} == {self.value:#x}"
        symbol = {"EQ": "==", "LT": "<", "GT": ">"}[self.op]
        return f"arg{self.index} {symbol} {self.value:#x}"


@dataclass(frozen=True)
class Entry:
    """Allow (or, with ``errno``, answer that errno to) ``names`` when every condition holds.

    Docker's ``includes``/``excludes``: ``cap`` — only if the container has
    that capability; ``without`` — only if it lacks it; ``arches`` — only on
    these native architectures; ``min_kernel`` — only from that version on.
    ``args`` must all hold (one libseccomp rule); several entries for one
    syscall are OR-ed.
    """

    names: tuple[str, ...]
    errno: int | None = None
    args: tuple[Cmp, ...] = ()
    cap: str | None = None
    without: str | None = None
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None

    def applies(self, capabilities: frozenset[str], machine: str, kernel: tuple[int, int]) -> bool:
        return (
            (self.cap is None or self.cap in capabilities)
            and (self.without is None or self.without not in capabilities)
            and (not self.arches or machine in self.arches)
            and (self.min_kernel is None or kernel >= self.min_kernel)
        )


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Allowed for every container, whatever its capabilities (Docker's first
#: entry, less the four kept stricter: see the module docstring).  Names the
#: installed libseccomp does not know are skipped, so they stay denied.
ALWAYS = _names(
    """
    accept accept4 access alarm bind brk cachestat capget capset chdir chmod chown chown32
    clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
    clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
    fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown
    fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
    fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
    futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat get_robust_list
    get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
    getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
    getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
    getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr
    getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
    io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit ioctl
    ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset
    landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
    listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
    mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
    mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
    process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
    readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall
    riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
    rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
    sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
    select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
    sendmmsg sendmsg sendto set_robust_list set_thread_area set_tid_address setfsgid
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr setxattrat shmat shmctl
    shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
    socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
    timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime
    utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
    """
)

#: clone(2) flags that would create a namespace: Docker's mask 0x7e020000.
NEW_NAMESPACES = (
    Namespace.NEWNS
    | Namespace.NEWCGROUP
    | Namespace.NEWUTS
    | Namespace.NEWIPC
    | Namespace.NEWUSER
    | Namespace.NEWPID
    | Namespace.NEWNET
)

#: personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
#: UNAME26|PER_LINUX32, and 0xffffffff (which only queries).
PERSONALITY_ALLOWED: tuple[int, ...] = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

#: address_families(7): AF_ALG (38) and AF_VSOCK (40) are refused, as Docker
#: does (kernel crypto and the hypervisor's sockets); every other domain passes.
AF_ALG, AF_NFC, AF_VSOCK = 38, 39, 40

#: What each capability adds to the profile (Docker's ``includes.caps``).
#: The capability already guards the call in the kernel; the filter keeps
#: the call's code out of reach of a container that lacks it.
CAPABILITY_ADDS: dict[str, tuple[str, ...]] = {
    "DAC_READ_SEARCH": ("open_by_handle_at", "name_to_handle_at"),
    "SYS_ADMIN": _names(
        """
        bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
        lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
        open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
        umount umount2 unshare
        """
    ),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": ("chroot",),
    "SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": (
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
    ),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_TIME": (
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_settime64",
        "adjtimex",
        "clock_adjtime",
        "clock_adjtime64",
    ),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
}

TABLE: tuple[Entry, ...] = (
    Entry(ALWAYS),
    # Before 4.8 a tracer could change a syscall after the filter had seen
    # it (seccomp(2), "ptrace"); from 4.8 on the check runs again, and the
    # PID namespace leaves only the container's own processes to trace.
    Entry(("process_vm_readv", "process_vm_writev", "ptrace"), min_kernel=(4, 8)),
    Entry(("socket",), args=(Cmp(0, "LT", AF_ALG),)),
    Entry(("socket",), args=(Cmp(0, "EQ", AF_NFC),)),
    Entry(("socket",), args=(Cmp(0, "GT", AF_VSOCK),)),
    *(Entry(("personality",), args=(Cmp(0, "EQ", value),)) for value in PERSONALITY_ALLOWED),
    Entry(("arch_prctl",), arches=("x86_64",)),
    Entry(("modify_ldt",), arches=("x86_64",)),
    # arm's own calls, for its 32-bit compat ABI on aarch64
    Entry(
        _names(
            "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"
        ),
        arches=("aarch64",),
    ),
    # clone(2) takes its flags first on x86 and arm (s390 alone differs):
    # without CAP_SYS_ADMIN, no flag that makes a namespace.
    Entry(
        ("clone",),
        args=(Cmp(0, "MASKED_EQ", 0, mask=int(NEW_NAMESPACES)),),
        without="SYS_ADMIN",
    ),
    # clone3(2) passes its flags in a struct a filter cannot read; ENOSYS
    # makes glibc fall back to clone(2), whose flags it can (as Docker does).
    Entry(("clone3",), errno=errno.ENOSYS, without="SYS_ADMIN"),
    *(Entry(names, cap=cap) for cap, names in CAPABILITY_ADDS.items()),
)

#: Native architecture (uname -m) -> the ABIs its kernel serves, all filtered
#: alike (Docker's ``archMap``); a syscall through any other ABI kills the
#: process (libseccomp's default bad-arch action).
ARCHES: dict[str, tuple[int, ...]] = {
    "x86_64": (pyseccomp.Arch.X86_64, pyseccomp.Arch.X86, pyseccomp.Arch.X32),
    "aarch64": (pyseccomp.Arch.AARCH64, pyseccomp.Arch.ARM),
}

#: The capabilities the table looks at; the cache key ignores every other.
RELEVANT_CAPABILITIES: frozenset[str] = frozenset(
    cap for entry in TABLE for cap in (entry.cap, entry.without) if cap is not None
)


@dataclass(frozen=True)
class Rule:
    """One line of the profile in words, for the docs and the tests."""

    syscall: str
    action: str
    when: str = ""


def kernel_version() -> tuple[int, int]:
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return major, minor


def entries(capabilities: Iterable[str], machine: str | None = None) -> list[Entry]:
    """The entries of ``TABLE`` that apply to a container with ``capabilities``."""
    caps = frozenset(capabilities)
    machine = machine or os.uname().machine
    kernel = kernel_version()
    return [entry for entry in TABLE if entry.applies(caps, machine, kernel)]


def rules(capabilities: Iterable[str] = DEFAULT_CAPABILITIES) -> list[Rule]:
    """The profile in words: what ``build`` puts in the filter, one line per syscall."""
    listed = []
    for entry in entries(capabilities):
        action = "ALLOW" if entry.errno is None else errno.errorcode[entry.errno]
        when = " && ".join(str(cmp) for cmp in entry.args)
        listed += [Rule(name, action, when) for name in entry.names]
    listed.append(Rule("*", "EPERM", "anything else"))
    return listed


def build(capabilities: Iterable[str], machine: str | None = None) -> pyseccomp.SyscallFilter:
    """The default filter for ``capabilities``, for ``machine``'s ABIs (native by default)."""
    machine = machine or os.uname().machine
    flt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    # seccomp_attr_set(3), SCMP_FLTATR_CTL_OPTIMIZE=2: a binary tree of
    # syscall numbers instead of ~400 linear tests.  Measured here, loading
    # in a forked child: 0.8 ms instead of 1.2-2.2 ms (the kernel emulates
    # the filter for every syscall number to fill its allow cache), and an
    # argument-filtered call 0.12 µs instead of 0.3-0.5 µs (docs/security.md).
    # libseccomp < 2.5 lacks the attribute: the filter stays linear then.
    try:
        flt.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    except OSError:
        pass
    arches = ARCHES.get(machine, ())
    for arch in arches:
        if not flt.exist_arch(arch):
            flt.add_arch(arch)
    if arches and pyseccomp.system_arch() not in arches:
        flt.remove_arch(pyseccomp.Arch.NATIVE)  # a filter for another machine (tests)
    for entry in entries(capabilities, machine):
        action = pyseccomp.ALLOW if entry.errno is None else pyseccomp.ERRNO(entry.errno)
        args = [cmp.arg() for cmp in entry.args]
        for name in entry.names:
            number = _number(name)
            if number is not None:  # unknown to this libseccomp: it stays denied
                flt.add_rule(action, number, *args)
    return flt


@functools.cache
def _number(name: str) -> int | None:
    """libseccomp's number for ``name``: native, or a pseudo-number (< 0) that
    it translates for each ABI of the filter; ``None`` if it does not know it."""
    number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
    return None if number == _NR_SCMP_ERROR else number


def export(flt: pyseccomp.SyscallFilter) -> bytes:
    """``flt`` as the kernel takes it: classic BPF (seccomp_export_bpf(3))."""
    # A memfd, not a file: a child that compiles for itself may already be
    # in the container's root, where no file of ours belongs.
    with os.fdopen(os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC), "w+b") as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


def reference(capabilities: Iterable[str], machine: str | None = None) -> bytes:
    """libseccomp's own program for ``capabilities`` (the tests' reference)."""
    return export(build(capabilities, machine))


def compact(capabilities: Iterable[str], machine: str | None = None) -> bytes:
    """The same decisions as ``reference``, in a program a third its length
    (runtime/security/seccompbpf.py: the kernel JIT-compiles the program on
    every load); libseccomp's where that compiler declines the table."""
    machine = machine or os.uname().machine
    default = seccompbpf.RET_ERRNO | errno.EPERM
    program = seccompbpf.program(entries(capabilities, machine), ARCHES.get(machine, ()), default)
    return reference(capabilities, machine) if program is None else program


@functools.cache
def _compiled(relevant: frozenset[str]) -> bytes:
    return compact(relevant)


def compiled(capabilities: Iterable[str] = DEFAULT_CAPABILITIES) -> bytes:
    """The BPF program for ``capabilities``, built once per relevant set.

    Building costs 15-25 ms of libseccomp work (docs/security.md), more
    than all the other set-up steps of a child together.  The launcher
    builds it before the clone (``prepare``), so the child inherits the
    bytes and only hands them to the kernel.  Capabilities the table does
    not look at (NET_ADMIN, …) share the default set's program."""
    return _compiled(frozenset(capabilities) & RELEVANT_CAPABILITIES)


def warm() -> None:
    """Compile the default container's program now, at the launcher's start."""
    compiled(DEFAULT_CAPABILITIES)


def prepare(security: Security) -> None:
    """Compile, in the launcher, the program the child of ``security`` will load.

    A failure is left for the child to report as its "load seccomp filter"
    step, which compiles again and fails with the same error."""
    if security.seccomp == "default":
        try:
            compiled(security.capabilities)
        except (OSError, ValueError, RuntimeError):
            pass


def load(capabilities: Iterable[str] = DEFAULT_CAPABILITIES, no_new_privs: bool = True) -> None:
    """Load the default filter for ``capabilities`` into the calling process.

    Without ``no_new_privs`` the caller needs CAP_SYS_ADMIN (seccomp(2));
    with it, no_new_privs is set first, as libseccomp's ``seccomp_load``
    does by default (``SCMP_FLTATR_CTL_NNP``).
    """
    program = compiled(capabilities)
    if no_new_privs:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    libc.seccomp_set_filter(program)
