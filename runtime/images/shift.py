"""Copies of image trees owned by a user namespace's ids (``copy_shifted``).

A container in a user namespace whose root is host uid H mounts its overlay
as that root: the lower layers' files must belong to ids the namespace maps,
or copy-up could not chown as the namespace's root.  So every uid and gid
below the namespace's size is moved up by H, as Docker's userns-remap does.
An overlay mounted in a user namespace uses ``userxattr``: a layer's opaque
directories (``trusted.overlay.opaque``, which layers.py sets) become
``user.overlay.opaque`` in the copy; whiteouts (character devices 0/0) are
made anew (mknod(2) of a 0/0 device is allowed to host root).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

WHITEOUT_DEV = os.makedev(0, 0)
TRUSTED_OPAQUE = "trusted.overlay.opaque"
USER_OPAQUE = "user.overlay.opaque"


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, TRUSTED_OPAQUE, follow_symlinks=False) == b"y"
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def copy_shifted(source: str, dest: str, host_id: int, size: int) -> None:
    """Copy a tree, owners shifted by ``host_id`` (ids >= ``size`` kept), modes kept.

    Iterative (an image may nest deeper than Python's recursion limit);
    directories get their owner, mode and times last, deepest first."""

    def shift(value: int) -> int:
        return value + host_id if value < size else value

    def settle(st: os.stat_result, path: str) -> None:
        os.lchown(path, shift(st.st_uid), shift(st.st_gid))
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    directories: list[tuple[os.stat_result, str]] = []
    stack = [(source, dest)]
    while stack:
        src, dst = stack.pop()
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            if _opaque(src):
                # overlayfs(5): mounted in a user namespace (userxattr), an
                # overlay reads user.overlay.*, never trusted.*.
                os.setxattr(dst, USER_OPAQUE, b"y", follow_symlinks=False)
            directories.append((st, dst))
            with os.scandir(src) as entries:
                stack.extend((e.path, os.path.join(dst, e.name)) for e in entries)
            continue
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst, 0o600)
        elif stat.S_ISCHR(mode) and st.st_rdev == WHITEOUT_DEV:
            os.mknod(dst, stat.S_IFCHR | 0o600, WHITEOUT_DEV)
        else:
            continue  # the importer lets no other device nodes in
        settle(st, dst)
    for st, dst in reversed(directories):  # children were appended after their parents
        settle(st, dst)
