"""Exec: start a process inside a running container (``docker exec``, nsenter(1)).

The launcher never calls setns(2) itself: it must stay in the host's
namespaces.  It forks an *intermediate* process, which

1. joins the container's cgroups (writes its pid to each ``cgroup.procs``;
   a child starts in its parent's cgroups, cgroups(7));
2. joins the container's namespaces with setns(2), the user namespace first
   (joining the others needs capabilities *in* it, user_namespaces(7)), then
   mnt (which also sets root and cwd to the container's root), uts, ipc,
   net, pid, cgroup;
3. forks the real process: setns to a PID namespace only places the
   caller's *children* in it (pid_namespaces(7)), so only the fork is PID N
   of the container;
4. waits for it and ends the same way (exit code, or the same signal), so
   the launcher reads the exec's status from its own child's pidfd.

The real process then runs the same steps as a container's child from chdir
on (controlling terminal, fds 0/1/2, nothing else open, signals reset) and
the container's privilege steps (runtime/security: capabilities, user,
no_new_privs, seccomp) with the exec's user, and execs.  Errors are named
steps on the error pipe, as for containers: ``"setns net: Operation not
permitted"``.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import resource
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass

from runtime import child, libc, procfs
from runtime.namespaces import Namespace
from runtime.spec import ContainerSpec, ExecSpec

#: The order of setns(2) calls (runc's nsexec and nsenter(1) use the same).
NS_ORDER = (
    Namespace.NEWUSER,
    Namespace.NEWNS,
    Namespace.NEWUTS,
    Namespace.NEWIPC,
    Namespace.NEWNET,
    Namespace.NEWPID,
    Namespace.NEWCGROUP,
)


@dataclass(frozen=True)
class Target:
    """What joining a container takes, opened by the launcher before the fork.

    ``namespaces`` holds ``(Namespace, fd)`` for each namespace in which the
    container differs from the launcher (setns to one's own user namespace
    fails with EINVAL, user_namespaces(7)); ``cgroup_procs`` the files to
    write our pid into."""

    namespaces: tuple[tuple[Namespace, int], ...]
    cgroup_procs: tuple[str, ...]

    def fds(self) -> list[int]:
        return [fd for _, fd in self.namespaces]

    def close(self) -> None:
        for fd in self.fds():
            os.close(fd)


def open_target(pid: int, is_alive: Callable[[], bool]) -> Target:
    """Open ``/proc/PID/ns/*`` of a container's init.

    ``is_alive`` (a check through the container's pidfd) is asked *after*
    opening: if the pid was still ours then, the fds are its namespaces and
    not those of a process that reused the pid."""
    opened: list[tuple[Namespace, int]] = []
    try:
        for ns in NS_ORDER:
            try:
                fd = os.open(f"/proc/{pid}/ns/{ns.proc_name}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # a namespace type this kernel lacks
            theirs = os.fstat(fd)
            ours = os.stat(f"/proc/self/ns/{ns.proc_name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                os.close(fd)
                continue
            opened.append((ns, fd))
        cgroup_procs = tuple(procfs.cgroup_procs_to_join(pid))
        if not is_alive():
            raise ProcessLookupError(errno.ESRCH, "the container has exited")
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return Target(tuple(opened), cgroup_procs)


def intermediate(
    target: Target,
    container: ContainerSpec,
    spec: ExecSpec,
    fds: child.ChildFds,
    tty_size: tuple[int, int] | None = None,
) -> None:
    """The forked launcher process's body; never returns."""
    try:
        _close_all_but(set(target.fds()) | _child_fds(fds))
        steps: list[tuple[str, Callable[[], None]]] = []
        for path in target.cgroup_procs:
            steps.append((f"join cgroup {path}", lambda p=path: _write_pid(p)))  # type: ignore[misc]
        for ns, fd in target.namespaces:
            steps.append((f"setns {ns.proc_name}", lambda f=fd, n=ns: libc.setns(f, int(n))))  # type: ignore[misc]
        for step, action in steps:
            try:
                action()
            except OSError as err:
                raise child.SetupError(step, err.errno or errno.EIO) from err
        target.close()
        try:
            pid = os.fork()
        except OSError as err:
            raise child.SetupError("fork", err.errno or errno.EIO) from err
    except child.SetupError as err:
        child.report(fds.error_write, err)
        os._exit(err.exit_code)
    except BaseException as err:  # noqa: BLE001 - never unwind into the launcher's loop
        child.report(fds.error_write, child.SetupError("exec setup", errno.EIO, repr(err)))
        os._exit(child.EXIT_SETUP_FAILED)
    if pid == 0:
        _real_process(container, spec, fds, tty_size)
    # Our copies must go, or the launcher never sees the error pipe's EOF
    # and the pty never hangs up.
    for fd in _child_fds(fds):
        os.close(fd)
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:  # noqa: BLE001
        os._exit(child.EXIT_SETUP_FAILED)
    _end_like(status)


def _child_fds(fds: child.ChildFds) -> set[int]:
    return {
        fd for fd in (fds.error_write, fds.stdin, fds.stdout, fds.stderr, fds.console) if fd >= 0
    }


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(f for f in keep if f >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _write_pid(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def _real_process(
    container: ContainerSpec,
    spec: ExecSpec,
    fds: child.ChildFds,
    tty_size: tuple[int, int] | None,
) -> None:
    environ = spec.environ(container)
    workdir = spec.workdir or container.workdir
    security = container.security
    try:
        if spec.user:
            identity = resolve_user(spec.user)
            security = dataclasses.replace(security, uid=identity.uid, gid=identity.gid)
            if identity.home and "HOME" not in spec.env:
                environ["HOME"] = identity.home
        steps: list[tuple[str, Callable[[], None]]] = [
            (f"chdir {workdir}", lambda: os.chdir(workdir)),
            *child.stdio_steps(fds, tty_size),
            ("reset signals", child.reset_signals),
            # The container's own confinement: bounding set, user, capabilities,
            # no_new_privs, seccomp (runtime/security), with the exec's user.
            *child.privilege_steps(security, container.options.group_add),
        ]
    except UnknownUser as err:
        failure = child.SetupError(f"set user {spec.user}", errno.ENOENT, str(err))
        child.report(fds.error_write, failure)
        os._exit(child.EXIT_SETUP_FAILED)
    except BaseException as err:  # noqa: BLE001 - never unwind into the launcher's loop
        child.report(fds.error_write, child.SetupError("exec setup", errno.EIO, repr(err)))
        os._exit(child.EXIT_SETUP_FAILED)
    child.run_steps(steps, list(spec.command), environ, fds.error_write)


def _end_like(status: int) -> None:
    """Exit with the real process's status, or die of its signal."""
    if os.WIFSIGNALED(status):
        signo = os.WTERMSIG(status)
        # No core file of ours: the signal is the message, not our memory.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(signo, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signo])
        except (OSError, ValueError):
            pass  # SIGKILL: default already, and cannot be blocked
        os.kill(os.getpid(), signo)
        os._exit(128 + signo)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


class UnknownUser(LookupError):
    pass


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    home: str | None = None


def resolve_user(user: str, etc: str = "/etc") -> Identity:
    """``"name"``, ``"uid"``, ``"name:group"`` or ``"uid:gid"``, as docker reads
    ``--user``: names come from the container's /etc/passwd and /etc/group.
    A uid without a passwd entry gets its own number as gid, as
    runtime/security/identity.py does; supplementary groups are emptied by
    the switch (identity.switch)."""
    name, _, group = user.partition(":")
    passwd = _read_table(os.path.join(etc, "passwd"))
    groups = _read_table(os.path.join(etc, "group"))
    entry = next((e for e in passwd if e[0] == name or (name.isdigit() and e[2] == name)), None)
    if entry is not None:
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5] if len(entry) > 5 else None
    elif name.isdigit():
        uid, gid, home = int(name), int(name), None
    else:
        raise UnknownUser(f"no user {name!r} in {etc}/passwd")
    if group:
        found = next((g for g in groups if g[0] == group), None)
        if found is not None:
            gid = int(found[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise UnknownUser(f"no group {group!r} in {etc}/group")
    return Identity(uid, gid, home)


def _read_table(path: str) -> list[list[str]]:
    """passwd(5) and group(5): colon-separated fields, one entry a line."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return []
        with open(path) as f:
            rows = [line.rstrip("\n").split(":") for line in f if line.strip()]
    except OSError:
        return []
    return [r for r in rows if len(r) >= 4 and not r[0].startswith("#")]
