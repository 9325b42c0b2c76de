"""The only module that talks to libc through ctypes.

Each wrapper declares ``argtypes``/``restype``, loads libc with
``use_errno=True`` and turns a ``-1`` return into ``OSError(errno,
"call: strerror")`` so that an error always names the call that failed.
Calls the standard library already offers (``os.pidfd_open``,
``signal.pidfd_send_signal``, ``os.waitid(P_PIDFD)``, ``socket.sethostname``)
are used from there instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
from collections.abc import Callable

# PyDLL keeps the GIL across the call: clone() runs the callback in the child
# on the same thread state, and nothing else in the single-threaded launcher
# could want the GIL meanwhile.
_libc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# <sys/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

# <linux/mount.h>: the new mount API (open_tree(2), move_mount(2),
# mount_setattr(2)), which works on whole subtrees and on detached mounts.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
# <fcntl.h>
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# <linux/openat2.h>: how openat2(2) resolves a path.
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# x86_64 and aarch64 syscall numbers for calls glibc 2.36 has no wrapper for.
# The new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount,
# mount_setattr) sits in the table shared by all architectures since Linux
# 5.2 (asm-generic/unistd.h).
_MOUNT_API = {
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    # openat2(2) (Linux 5.6): in the same shared table.
    "openat2": 437,
    "mount_setattr": 442,
    # open_tree_attr(2) (Linux 6.15): open_tree with mount_setattr's attributes.
    "open_tree_attr": 467,
}
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, **_MOUNT_API},
    "aarch64": {"pivot_root": 41, **_MOUNT_API},
}


def _check(result: int, call: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return result


CloneCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

_libc.clone.argtypes = [
    CloneCallback,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_int),
]
_libc.clone.restype = ctypes.c_int

# The child's stack.  Without CLONE_VM the child gets a copy-on-write copy of
# the parent's memory, this buffer included, so one buffer serves every clone.
# The Python code that runs in the child before execve needs a real C stack.
_STACK_SIZE = 8 << 20
_stack = mmap.mmap(-1, _STACK_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
_stack_top = ctypes.addressof(ctypes.c_char.from_buffer(_stack)) + _STACK_SIZE - 64


def clone(child: Callable[[], int], flags: int) -> tuple[int, int]:
    """clone(2) a child that runs ``child()`` and return ``(pid, pidfd)``.

    ``flags`` must include CLONE_PIDFD: glibc's wrapper stores the pidfd at
    ``parent_tid`` (clone(2)).  ``child`` must never return into glibc with an
    exception; it should end in ``os._exit`` or ``execve``.
    """

    def trampoline(_arg: int | None) -> int:
        try:
            return child()
        finally:
            os._exit(127)

    callback = CloneCallback(trampoline)
    pidfd = ctypes.c_int(-1)
    pid = _libc.clone(callback, _stack_top, flags, None, ctypes.byref(pidfd))
    _check(pid, "clone")
    return pid, pidfd.value


_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """mount(2); the error names the target."""
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
        f"mount {target}",
    )


_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(os.fsencode(target), flags), f"umount {target}")


_libc.syscall.restype = ctypes.c_long
# syscall(2) is variadic: this copy of it (``_libc[name]`` makes a new function
# object, unlike attribute access) has no argtypes, and every argument is
# passed as an explicit ctypes value of the kernel's type.
_raw_syscall = _libc["syscall"]
_raw_syscall.restype = ctypes.c_long


#: This machine's numbers, looked up once: os.uname() is a system call of its
#: own, and a launch makes a dozen of these calls (a KeyError at the first
#: one on another architecture, as before).
_NUMBERS = _SYSCALLS.get(os.uname().machine, {})


def _syscall(name: str, *args: object) -> int:
    return int(_raw_syscall(ctypes.c_long(_NUMBERS[name]), *args))


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2), which glibc does not wrap."""
    _check(
        _syscall(
            "pivot_root",
            ctypes.c_char_p(os.fsencode(new_root)),
            ctypes.c_char_p(os.fsencode(put_old)),
        ),
        "pivot_root",
    )


class _MountAttr(ctypes.Structure):
    """``struct mount_attr`` of <linux/mount.h> (MOUNT_ATTR_SIZE_VER0, 32 bytes)."""

    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(
    path: str, attr_set: int, *, recursive: bool = False, dirfd: int = AT_FDCWD, attr_clr: int = 0
) -> None:
    """mount_setattr(2): change flags of the mount at ``path`` (and below it).

    With ``dirfd`` from ``open_tree`` and ``path=""`` it changes a detached
    mount before it is attached anywhere."""
    flags = AT_RECURSIVE if recursive else 0
    if not path:
        flags |= AT_EMPTY_PATH
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(
        _syscall(
            "mount_setattr",
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.c_uint(flags),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        f"mount_setattr {path or dirfd}",
    )


class _OpenHow(ctypes.Structure):
    """``struct open_how`` of <linux/openat2.h> (OPEN_HOW_SIZE_VER0, 24 bytes)."""

    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Linux 5.6), which glibc 2.36 does not wrap.

    With ``RESOLVE_IN_ROOT`` the path is resolved as if ``dirfd`` were the
    root: ``..`` stops there and absolute symlinks start there, so nothing
    outside ``dirfd`` can be reached however the tree's links point."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(
        _syscall(
            "openat2",
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        ),
        f"openat2 {path}",
    )


#: Whether the kernel has open_tree_attr(2); False after its first ENOSYS.
_open_tree_attr = True


def open_tree(
    path: str, *, recursive: bool = True, dirfd: int = AT_FDCWD, attr_set: int = 0
) -> int:
    """open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at ``path``.

    The copy is a bind mount that is not attached anywhere yet; ``move_mount``
    attaches it later, even after pivot_root(2) has made ``path`` unreachable.
    With ``path`` empty, the copy is of ``dirfd`` itself (AT_EMPTY_PATH): a
    detached tree can be copied again by the process that holds it.
    ``attr_set`` (MOUNT_ATTR_*, e.g. read-only) is set on the copy in the
    same call where the kernel has open_tree_attr(2) (Linux 6.15), else by
    ``mount_setattr`` on it.
    """
    global _open_tree_attr
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    if not path:
        flags |= AT_EMPTY_PATH
    if attr_set and _open_tree_attr:
        attr = _MountAttr(attr_set, 0, 0, 0)
        fd = _syscall(
            "open_tree_attr",
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.c_uint(flags),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        if fd >= 0 or ctypes.get_errno() != errno.ENOSYS:
            return _check(fd, f"open_tree {path or dirfd}")
        _open_tree_attr = False
    if attr_set:
        tree = open_tree(path, recursive=recursive, dirfd=dirfd)
        try:
            mount_setattr("", attr_set, recursive=recursive, dirfd=tree)
        except BaseException:
            os.close(tree)
            raise
        return tree
    return _check(
        _syscall(
            "open_tree",
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.c_uint(flags),
        ),
        f"open_tree {path or dirfd}",
    )


def move_mount(fd: int, target: str, *, dirfd: int = AT_FDCWD) -> None:
    """move_mount(2): attach the detached mount ``fd`` at ``target`` (relative
    to ``dirfd``, which may itself be a detached tree on Linux >= 6.15)."""
    _check(
        _syscall(
            "move_mount",
            ctypes.c_int(fd),
            ctypes.c_char_p(b""),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(target)),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        f"move_mount {target}",
    )


def fsmount_new(
    fstype: str, options: dict[str, str], attr: int = 0, flags: tuple[str, ...] = ()
) -> int:
    """A new, detached filesystem instance: fsopen(2), fsconfig(2) with each
    of ``options`` (key=value) and ``flags`` (a bare key, e.g. ``none``) and
    FSCONFIG_CMD_CREATE, then fsmount(2) with the mount attributes ``attr``
    (MOUNT_ATTR_*).  Returns the mount's fd, for ``move_mount`` or to hold
    the instance alive; the configuration fd is closed."""
    fs = _check(
        _syscall("fsopen", ctypes.c_char_p(fstype.encode()), ctypes.c_uint(FSOPEN_CLOEXEC)),
        f"fsopen {fstype}",
    )
    try:
        for key, value in options.items():
            _fsconfig(fs, FSCONFIG_SET_STRING, key, value)
        for flag in flags:
            _fsconfig(fs, FSCONFIG_SET_FLAG, flag, None)
        _fsconfig(fs, FSCONFIG_CMD_CREATE, None, None)
        return _check(
            _syscall(
                "fsmount", ctypes.c_int(fs), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr)
            ),
            f"fsmount {fstype}",
        )
    finally:
        os.close(fs)


def _fsconfig(fs: int, cmd: int, key: str | None, value: str | None) -> None:
    _check(
        _syscall(
            "fsconfig",
            ctypes.c_int(fs),
            ctypes.c_uint(cmd),
            ctypes.c_char_p(key.encode() if key is not None else None),
            ctypes.c_char_p(value.encode() if value is not None else None),
            ctypes.c_int(0),
        ),
        f"fsconfig {key or 'create'}",
    )


_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace ``fd`` refers to."""
    _check(_libc.setns(fd, nstype), "setns")


_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.prctl.restype = ctypes.c_int


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# <linux/seccomp.h>
SECCOMP_MODE_FILTER = 2
#: sizeof(struct sock_filter) in <linux/filter.h>: u16 code, u8 jt, u8 jf, u32 k.
BPF_INSTRUCTION_SIZE = 8


class _SockFprog(ctypes.Structure):
    """struct sock_fprog (<linux/filter.h>): a classic BPF program."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes) -> None:
    """Install a compiled seccomp filter on the calling thread.

    seccomp(2): ``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)`` is
    ``seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)``; it needs no_new_privs
    or CAP_SYS_ADMIN, which the caller sees to."""
    count, rest = divmod(len(program), BPF_INSTRUCTION_SIZE)
    if rest or not count:
        raise ValueError(
            f"a BPF program is a non-empty array of 8-byte instructions, not {len(program)} bytes"
        )
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.addressof(buffer))
    _check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
        "prctl(PR_SET_SECCOMP)",
    )


# <linux/capability.h>: version 3 takes two 32-bit words per set.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
_libc.capset.restype = ctypes.c_int
_libc.capget.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
_libc.capget.restype = ctypes.c_int


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread; each set is a 64-bit mask."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in range(2):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def capget() -> tuple[int, int, int]:
    """capget(2) of the calling thread: ``(effective, permitted, inheritable)``."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    sets = [0, 0, 0]
    for word in range(2):
        shift = 32 * word
        sets[0] |= data[word].effective << shift
        sets[1] |= data[word].permitted << shift
        sets[2] |= data[word].inheritable << shift
    return sets[0], sets[1], sets[2]


# <sys/inotify.h>: the launcher watches the log files (output_bytes, the
# time index of runtime/logindex.py).
IN_MODIFY = 0x2
IN_Q_OVERFLOW = 0x4000  # events were dropped (wd is -1)
IN_IGNORED = 0x8000  # the watch was removed
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_add_watch.restype = ctypes.c_int
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.inotify_rm_watch.restype = ctypes.c_int


def inotify_init1(flags: int) -> int:
    """inotify_init1(2): a new inotify instance's fd."""
    return _check(_libc.inotify_init1(flags), "inotify_init1")


def inotify_add_watch(fd: int, path: str, mask: int) -> int:
    """inotify_add_watch(2): the watch descriptor."""
    return _check(_libc.inotify_add_watch(fd, os.fsencode(path), mask), f"inotify_add_watch {path}")


def inotify_rm_watch(fd: int, wd: int) -> None:
    _check(_libc.inotify_rm_watch(fd, wd), "inotify_rm_watch")


# <linux/fs.h>: renameat2(2)'s flag that swaps two existing paths.
RENAME_EXCHANGE = 1 << 1

_libc.renameat2.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
]
_libc.renameat2.restype = ctypes.c_int


def exchange(first: str, second: str) -> None:
    """renameat2(2) with RENAME_EXCHANGE: ``first`` and ``second`` (both
    existing, on one file system) swap places atomically; neither is
    unlinked, so an empty directory is not removed on the way (an rmdir(2)
    or a rename over one costs a few ms on ext4 here)."""
    _check(
        _libc.renameat2(
            AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE
        ),
        f"renameat2 {first} {second}",
    )
