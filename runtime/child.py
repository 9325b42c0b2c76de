"""What runs in the cloned child, between clone(2) and execve(2).

Order matters and each step is named, so a failure reads
``"mount /proc: Operation not permitted"`` on the container's ``error``:

1. wait for the parent's go byte on the sync pipe (the parent writes the
   id maps and the pid file first);
2. make every mount private (``MS_REC|MS_PRIVATE``) before mounting anything,
   so nothing propagates back to the host (mount_namespaces(7)); write the
   sysctls the container asked for (only those of its own namespaces,
   runtime/options.py: /proc/sys/net and the IPC ones show the writer's
   namespace, proc(5), so the host's /proc still serves here);
3. build the container's root (``runtime.rootfs``: overlay or the read-only
   host, pivot_root, a fresh ``/proc`` for the new PID namespace, ``/sys`` for
   the new network namespace, a minimal ``/dev``, the user's mounts, then
   Docker's masked and read-only paths, runtime/security/paths.py); a spec
   without a ``rootfs`` plan keeps the host's root and only gets the fresh
   ``/proc`` and ``/sys`` and the masks;
4. set the hostname (UTS namespace, unless it is the host's); ``lo`` (and on
   a bridge ``eth0``: address, up, default route) is the launcher's, up in
   the child's network namespace before the joined byte
   (runtime/launcher/spawn.py, ``loopback_up``; plumbing.py);
   wait for the parent's joined byte: while the child built its root, the
   parent moved it into the container's cgroups (``JOINED_BYTE``, below);
   set the rlimits (``nofile``, ``fsize_bytes``, then the options' ulimits);
5. chdir; with a tty: open a pty through the container's /dev/ptmx, send
   its master to the launcher, setsid and make the slave the controlling
   terminal (TIOCSCTTY); wire stdin/stdout/stderr, close every other fd;
6. reset the signal mask and dispositions (CPython ignores SIGPIPE/SIGXFSZ);
7. privileges, last (runtime/security): drop the bounding set, clear the
   ambient set, switch user (setgroups/setresgid/setresuid), set the
   permitted/effective/inheritable sets, no_new_privs, and the seccomp
   filter at the very end so that it filters none of the setup;
8. execve, searching ``PATH`` like execvp(3).

A failure is written as one JSON object to the close-on-exec error pipe and
the child exits 127/126 (exec) or 125 (setup), the same codes a shell and
``docker run`` use.  A successful execve closes the pipe, and the parent
reads EOF.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C half: no stub
import errno
import fcntl
import json
import os
import resource
import signal
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime import init, libc, rootfs, terminal
from runtime.namespaces import Namespace
from runtime.options import RLIMITS, Ulimit
from runtime.security import capabilities, identity, paths, seccomp
from runtime.spec import ContainerSpec, Limits, Security

EXIT_SETUP_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

GO_BYTE = b"G"
#: The second byte on the sync pipe: the parent has moved the child into
#: every cgroup of the container (runtime/launcher/spawn.py, ``Spawner.join``).
#:
#: cgroups(7): a process's cgroup membership is what the controllers limit
#: and count, and a child starts in its parent's cgroups.  Writing a pid to
#: ``cgroup.procs`` is the slowest part of a launch (the cgroup core's
#: per-CPU rw-semaphore waits for an RCU grace period, docs/performance.md),
#: and nothing the child does to build its root needs the cgroup: so the
#: parent sends the go byte first and joins while the child mounts, and the
#: child waits for this byte before the first step done on the command's
#: behalf (rlimits, the pty, privileges, execve).  Everything the command
#: runs, allocates or forks therefore happens inside the container's cgroups,
#: as before; only the setup before this byte is charged to the launcher's
#: cgroups (docs/limits.md).
JOINED_BYTE = b"J"


@dataclass(frozen=True)
class ChildFds:
    """The parent's fds the child needs; all others are closed in step 5."""

    sync_read: int
    error_write: int
    stdin: int
    stdout: int
    stderr: int
    #: With a tty: the socket the pty's master goes back on (0/1/2 are then
    #: the slave the child opens; runtime/terminal.py), else -1.
    console: int = -1
    #: The launcher's end of the sync pipe, which the child inherits and
    #: closes before it waits: see ``run``.
    sync_write: int = -1
    #: For the ``host`` image: the launcher's copies of the view's trees
    #: (runtime/images/viewtrees.py), attached and closed while the root is built.
    view: Mapping[str, int] | None = None
    #: A network namespace made ahead (runtime/launcher/sparenet.py), lo up,
    #: which the child joins first; -1: clone(2) made its own.
    netns: int = -1


class SetupError(Exception):
    """A failed step, with the step's name and the errno."""

    def __init__(self, step: str, err: int, detail: str = "", exit_code: int = 125) -> None:
        super().__init__(f"{step}: {detail or os.strerror(err)}")
        self.step = step
        self.errno = err
        self.exit_code = exit_code


@dataclass(frozen=True)
class Prepared:
    """What the child runs, built before it exists (``prepare``)."""

    steps: list[tuple[str, Callable[[], None]]]
    argv: list[str]
    environ: dict[str, str]


def prepare(
    spec: ContainerSpec, fds: ChildFds, tty_size: tuple[int, int] | None = None
) -> Prepared:
    """The child's steps, argv and environment, built by the launcher just
    before clone(2): only closures over the spec and the fds, no system
    call.  The child inherits them ready; building them there cost 0.5-0.9
    ms before its go byte, mostly first writes to pages it shares with the
    launcher copy-on-write, against some 30 µs here (``bench.timeline``)."""
    return Prepared(_steps(spec, fds, tty_size), init.argv(spec), spec.environ())


def run(
    spec: ContainerSpec,
    fds: ChildFds,
    tty_size: tuple[int, int] | None = None,
    prepared: Prepared | None = None,
) -> int:
    """The child's body; never returns normally."""
    try:
        # Our copy of the pipe's write end would keep us from ever seeing EOF
        # if the launcher dies before releasing us (kill -9): we would wait
        # forever, holding the launcher's sockets open.  Without it, EOF comes
        # once the launcher and the siblings cloned after us are gone (they
        # wait the same way, so the last one goes first).
        if fds.sync_write >= 0:
            os.close(fds.sync_write)
        if prepared is None:
            prepared = prepare(spec, fds, tty_size)
        go = _wait_for_go(fds.sync_read)
    except BaseException:  # noqa: BLE001 - the child must never unwind into glibc
        go = False
    if not go or prepared is None:
        os._exit(EXIT_SETUP_FAILED)  # the parent gave up on us
    run_steps(prepared.steps, prepared.argv, prepared.environ, fds.error_write)
    return EXIT_SETUP_FAILED  # not reached


def _steps(
    spec: ContainerSpec, fds: ChildFds, tty_size: tuple[int, int] | None = None
) -> list[tuple[str, Callable[[], None]]]:
    return [
        # First: the sysctls of net.* and the /sys mounted below show the
        # namespace of the process that writes or mounts them.
        *_netns_steps(fds.netns),
        ("make mounts private", lambda: libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)),
        *[(f"sysctl {name}", _sysctl(name, value)) for name, value in spec.options.sysctls.items()],
        *(
            rootfs.steps(spec, fds.view)
            if spec.rootfs is not None
            else [
                ("mount /proc", _mount_proc),
                ("mount /sys", _mount_sys),
                ("mask /proc and /sys paths", paths.protect),
            ]
        ),
        *(
            []
            if spec.options.shares("uts")
            else [("sethostname", lambda: socket.sethostname(spec.hostname))]
        ),
        *released_steps(spec, fds, tty_size),
    ]


def released_steps(
    spec: ContainerSpec, fds: ChildFds, tty_size: tuple[int, int] | None = None
) -> list[tuple[str, Callable[[], None]]]:
    """From the wait for the joined byte to the last step before execve:
    the same for a cold child and a pooled one (runtime/pooled.py)."""
    return [
        # Nothing before this runs on the command's behalf; nothing after it
        # may run outside the container's cgroups (JOINED_BYTE).
        ("wait for the cgroup join", lambda: wait_for_joined(fds.sync_read)),
        ("set rlimits", lambda: _set_rlimits(spec.limits, spec.options.ulimits)),
        (f"chdir {spec.workdir}", lambda: os.chdir(spec.workdir)),
        *stdio_steps(fds, tty_size),
        ("reset signals", reset_signals),
        *privilege_steps(spec.security, spec.options.group_add),
    ]


def stdio_steps(
    fds: ChildFds, tty_size: tuple[int, int] | None = None
) -> list[tuple[str, Callable[[], None]]]:
    """Terminal, fds 0/1/2, no other fd: shared with exec.

    With a tty the pty is opened here, after the mounts, so it comes from
    the container's own devpts when it has one (runtime/terminal.py)."""
    if fds.console < 0:
        return [
            ("set up stdio", lambda: _stdio(fds)),
            ("close fds", lambda: close_fds(keep=fds.error_write)),
        ]
    slave: list[int] = []
    return [
        ("open a terminal", lambda: slave.append(terminal.open_console(fds.console, tty_size))),
        ("set controlling terminal", lambda: terminal.make_controlling(slave[0])),
        ("set up stdio", lambda: _stdio(ChildFds(-1, -1, slave[0], slave[0], slave[0]))),
        ("close fds", lambda: close_fds(keep=fds.error_write)),
    ]


def run_steps(
    steps: list[tuple[str, Callable[[], None]]],
    argv: list[str],
    environ: dict[str, str],
    error_write: int,
) -> None:
    """Run named steps then execve; a failure is reported and ends the process."""
    try:
        run_named(steps)
        _exec(argv, environ)
    except SetupError as err:
        report(error_write, err)
        os._exit(err.exit_code)
    except BaseException as err:  # noqa: BLE001 - the child must never unwind into glibc
        report(error_write, SetupError("setup", errno.EIO, repr(err)))
        os._exit(EXIT_SETUP_FAILED)


def run_named(steps: list[tuple[str, Callable[[], None]]]) -> None:
    """Run the steps in order; an OSError becomes the step's SetupError."""
    for step, action in steps:
        try:
            action()
        except OSError as err:
            raise SetupError(step, err.errno or errno.EIO) from err


def privilege_steps(
    sec: Security, groups: tuple[str, ...] = ()
) -> list[tuple[str, Callable[[], None]]]:
    keep = capabilities.mask(sec.capabilities)
    held = _HELD if sec.userns_host_id is None else _FULL_SET
    user = identity.User(sec.uid, sec.gid, groups)
    steps: list[tuple[str, Callable[[], None]]] = [
        (
            "drop bounding capabilities",
            lambda: capabilities.drop_bounding(keep, _LAST_CAP),
        ),
        ("clear ambient capabilities", capabilities.clear_ambient),
    ]
    confined = sec.seccomp == "default"

    def load_filter(no_new_privs: bool) -> None:
        # The profile depends on the kept capabilities (Docker's includes.caps).
        seccomp.load(sec.capabilities, no_new_privs=no_new_privs)

    if confined and not sec.no_new_privileges:
        # seccomp(2): without no_new_privs, loading a filter needs
        # CAP_SYS_ADMIN, which the steps below give up; load it first.
        steps.append(("load seccomp filter", lambda: load_filter(False)))
    steps += [
        (f"switch to user {_who(user)}", lambda: identity.switch(user)),
        ("set capabilities", lambda: capabilities.apply(keep, user.uid, held)),
    ]
    if sec.no_new_privileges:
        # prctl(2): execve can no longer grant privileges (setuid bits, file caps).
        steps.append(("set no_new_privs", _no_new_privs))
        if confined:
            steps.append(("load seccomp filter", lambda: load_filter(True)))
    return steps


#: Read once in the launcher, at import: the same for every child, and one
#: open and read of /proc less in each (proc(5): cap_last_cap).
_LAST_CAP = capabilities.last_cap()
#: What a child holds when it sets its capabilities, known in the launcher:
#: its own permitted set, which a child cloned or forked from it inherits
#: (dropping the bounding set leaves permitted alone), or in a user
#: namespace every capability there (user_namespaces(7): the first process
#: of a new one, or one that joins it, has them all).
_HELD = libc.capget()[1]
_FULL_SET = (1 << (_LAST_CAP + 1)) - 1


def _who(user: identity.User) -> str:
    """``0:0``, with the groups added when there are (their names are looked
    up in that step, so a missing one is named in its error)."""
    added = f" and groups {','.join(user.groups)}" if user.groups else ""
    return f"{user.uid}:{user.gid}{added}"


def _netns_steps(fd: int) -> list[tuple[str, Callable[[], None]]]:
    return [] if fd < 0 else [("join the network namespace", lambda: _join_netns(fd))]


def _join_netns(fd: int) -> None:
    # setns(2): the network namespace only; the fd is of no further use.
    libc.setns(fd, Namespace.NEWNET)
    os.close(fd)


def _no_new_privs() -> None:
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)


def _wait_for_go(fd: int) -> bool:
    # Wait for an explicit byte, not for EOF: sibling children cloned later
    # inherit the write end of this pipe, so EOF could come much later.
    while True:
        try:
            data = os.read(fd, 1)
        except InterruptedError:
            continue
        return data == GO_BYTE


def wait_for_joined(fd: int) -> None:
    """Block until the parent has joined us to the container's cgroups.

    Anything but the byte (EOF: the launcher died) ends the child quietly,
    as a missing go byte does: nobody is left to read a report.  A parent
    whose join failed does not write at all: it SIGKILLs us."""
    while True:
        try:
            data = os.read(fd, 1)
        except InterruptedError:
            continue
        if data != JOINED_BYTE:
            os._exit(EXIT_SETUP_FAILED)
        return


_PROC_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def _mount_proc() -> None:
    # proc(5): the mount shows the PID namespace of the process that mounts it.
    libc.mount("proc", "/proc", "proc", _PROC_FLAGS)


def _mount_sys() -> None:
    # sysfs(5) shows the network devices of the mounting process's network
    # namespace, so the host's interfaces disappear from /sys/class/net.
    libc.mount("sysfs", "/sys", "sysfs", _PROC_FLAGS | libc.MS_RDONLY)


# <linux/sockios.h>, <net/if.h>
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")


def loopback_up() -> None:
    """For a pooled child (runtime/pooled.py), which makes its namespaces
    ahead of any launch; a cold child's lo is the launcher's."""
    # netdevice(7): read the flags with SIOCGIFFLAGS, set IFF_UP, write back.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = fcntl.ioctl(sock, _SIOCGIFFLAGS, _IFREQ.pack(b"lo", 0))
        _, flags = _IFREQ.unpack(req)
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))


def _sysctl(name: str, value: str) -> Callable[[], None]:
    def write() -> None:
        # sysctl(8): net.ipv4.ip_forward is /proc/sys/net/ipv4/ip_forward.
        with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
            f.write(value)

    return write


def _set_rlimits(limits: Limits, ulimits: tuple[Ulimit, ...] = ()) -> None:
    # getrlimit(2): soft and hard alike, so the command cannot raise them back.
    # RLIMIT_FSIZE applies to every file the command writes, its stdout and
    # stderr logs too; past it write(2) fails with EFBIG and the process gets
    # SIGXFSZ (default action: core dump), which "reset signals" below restores
    # from CPython's SIG_IGN.
    if limits.nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
    if limits.fsize_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_bytes, limits.fsize_bytes))
    for ulimit in ulimits:
        # Docker's -1 is RLIM_INFINITY.
        soft, hard = (resource.RLIM_INFINITY if v < 0 else v for v in (ulimit.soft, ulimit.hard))
        resource.setrlimit(RLIMITS[ulimit.name], (soft, hard))


def _stdio(fds: ChildFds) -> None:
    for target, source in ((0, fds.stdin), (1, fds.stdout), (2, fds.stderr)):
        os.dup2(source, target, inheritable=True)


def close_fds(keep: int) -> None:
    # Nothing of the launcher's (its socket, other containers' pipes and log
    # files, pidfds) may leak into the container.  `keep` is close-on-exec.
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)


#: Computed once in the launcher: signal.valid_signals() builds a set of
#: enums each call (0.12 ms), too slow for every child.
_CATCHABLE = tuple(
    int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)


def reset_signals() -> None:
    # The C module's functions, not the signal module's wrappers, which make
    # an enum of every value they take or return (and raise and catch a
    # ValueError for each handler that is not one): 0.35 ms against 0.1 in
    # a freshly forked child, most of it first writes to pages it shares
    # with the launcher copy-on-write.
    _signal.pthread_sigmask(signal.SIG_SETMASK, ())
    # Only dispositions other than SIG_DFL need a sigaction(2): CPython read
    # every one at start-up and tracks its own changes, so getsignal() knows
    # them without a syscall.  Handlers would not survive execve(2) anyway;
    # SIG_IGN would.
    default = int(signal.SIG_DFL)
    for signo in _CATCHABLE:
        if _signal.getsignal(signo) == default:
            continue
        try:
            _signal.signal(signo, default)
        except (OSError, ValueError):
            pass  # glibc's own: below
    # glibc's own signals (32, 33), which the signal module cannot see: a
    # parent started by posix_spawn(3), as the pool's zygote is, has them
    # ignored, and SIG_IGN would reach the command (7 us for both).
    for signo in libc.NPTL_SIGNALS:
        libc.default_disposition(signo)


# Errors that mean "no such file here": the PATH search goes on past them.
_NOT_FOUND = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG)
# Errors that mean "found, but you may not run it": remembered, search goes on.
_DENIED = (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR)


def _exec(argv: list[str], environ: dict[str, str]) -> None:
    name = argv[0]
    if not name:
        # execve(2) would get "" (ENOENT); Python refuses it with ValueError.
        raise SetupError("exec ''", errno.ENOENT, "empty command name", EXIT_NOT_FOUND)
    if "/" in name:
        candidates = [name]
    else:
        # execvp(3): without PATH (Docker's bare "PATH" in Env unsets it),
        # the path list is confstr(_CS_PATH)'s, "/bin:/usr/bin".
        search = environ.get("PATH", os.confstr("CS_PATH") or "/bin:/usr/bin")
        candidates = [os.path.join(d or ".", name) for d in search.split(":")]
    # execvp(3): remember EACCES from one directory but keep searching; report
    # ENOENT only when no directory had the file at all.  Any other error
    # (ETXTBSY, E2BIG, ENOMEM, ...) ends the search: the file was found but
    # could not be run, which is 126 with the real reason, as a shell says.
    denied: OSError | None = None
    other: OSError | None = None
    last: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, argv, environ)
        except OSError as err:
            last = err
            if err.errno in _DENIED:
                denied = denied or err
                if "/" in name:
                    break
            elif err.errno not in _NOT_FOUND:
                other = err
                break
    failure = other or denied or last
    assert failure is not None
    code = EXIT_NOT_FOUND if failure.errno in _NOT_FOUND else EXIT_NOT_EXECUTABLE
    if code == EXIT_NOT_FOUND and "/" not in name:
        raise SetupError(
            f"exec {name}",
            failure.errno or errno.ENOENT,
            f"not found in PATH ({environ['PATH']})",
            exit_code=code,
        )
    target = failure.filename if failure.filename else name
    raise SetupError(f"exec {target}", failure.errno or errno.ENOENT, exit_code=code)


def report(fd: int, err: SetupError) -> None:
    message = json.dumps(
        {"step": err.step, "errno": err.errno, "message": str(err), "exit_code": err.exit_code}
    ).encode()
    try:
        os.write(fd, message)
    except OSError:
        pass


def read_report(fd: int) -> dict[str, object] | None:
    """A dead child's report from its error pipe (every write end is closed)."""
    os.set_blocking(fd, True)
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return parse_report(b"".join(chunks))


def parse_report(data: bytes) -> dict[str, object] | None:
    """The parent's side of ``report``: ``None`` when exec succeeded (EOF)."""
    if not data:
        return None
    try:
        report = json.loads(data)
    except ValueError:
        return {"step": "setup", "errno": 0, "message": "setup failed", "exit_code": 125}
    return report if isinstance(report, dict) else None
