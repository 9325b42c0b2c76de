"""The host view's read-only trees: prepared once in the launcher, copied per container.

Building the view in every child cost an open_tree(2) and a mount_setattr(2)
per system directory and one mount per mask of ``/etc`` (a dozen on a Debian
host; about 0.36 ms together, ``python -m bench.steps``).  The launcher
instead holds, for the current ``(binds, masks)`` of the plans it is given,
one detached tree per directory of the view (``runtime/images/hostview.py``):

    /usr, ...     open_tree(2) OPEN_TREE_CLONE | AT_RECURSIVE of the host's,
                  made read-only all the way down with mount_setattr(2)
    /etc          the same, with each mask already mounted in it: a clone of
                  /dev/null over a file, an empty read-only tmpfs (fsmount(2))
                  over a directory

Mounting onto a detached tree (``move_mount`` with the tree's fd as the
target's dirfd) needs Linux >= 6.15 ("fs: mount detached mounts onto
detached mounts").  Per launch, ``copies`` gives one open_tree(2) of each
tree (AT_EMPTY_PATH on its fd, about 15 µs): a new detached tree with the
masks and the read-only flags in it.  The child inherits the fds across
clone(2) and only attaches them (``runtime/rootfs.py``).  Copies must be
made here: the kernel lets only a process of the tree's origin mount
namespace copy a detached tree, which the child, in its own, is not.

A plan whose masks differ from the trees' (``/etc`` changed:
``hostview.EtcMasks`` saw it) gets new trees.  Where the kernel refuses to
build them, ``copies`` answers ``None`` from then on and the child builds
its view itself, as before.
"""

from __future__ import annotations

import logging
import os
import stat

from runtime import libc
from runtime.spec import RootfsPlan

log = logging.getLogger("mydocker.images.viewtrees")

#: The empty directory mask: read-only, no device nodes, nothing to run.
_EMPTY_ATTR = (
    libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC
)


class ViewTrees:
    """The detached trees of one ``(binds, masks)``; rebuilt when they change."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._trees: dict[str, int] = {}
        self._usable = True

    def copies(self, plan: RootfsPlan) -> dict[str, int] | None:
        """A fresh copy of each tree of ``plan``'s view, by path, masks in;
        ``None`` if this kernel cannot hold them (the child then builds the
        view itself).  The caller owns the fds: the child attaches them, the
        launcher closes its own after the clone."""
        if not self._usable:
            return None
        key = (plan.binds, plan.masks)
        if key != self._key:
            try:
                self._build(*key)
            except OSError as err:
                log.warning("host view trees unavailable (%s): each child builds its own", err)
                self.close()
                self._usable = False
                return None
        copies: dict[str, int] = {}
        try:
            for path, fd in self._trees.items():
                copies[path] = libc.open_tree("", dirfd=fd)
        except OSError:
            close_all(copies)
            raise
        return copies

    def close(self) -> None:
        close_all(self._trees)
        self._trees = {}
        self._key = None

    def _build(self, binds: tuple[str, ...], masks: tuple[str, ...]) -> None:
        self.close()
        trees: dict[str, int] = {}
        try:
            for path in binds:
                fd = trees[path] = libc.open_tree(path, recursive=True)
                for mask in masks:
                    if mask.startswith(path + "/"):
                        _mask(fd, os.path.relpath(mask, path))
                libc.mount_setattr("", libc.MOUNT_ATTR_RDONLY, recursive=True, dirfd=fd)
        except OSError:
            close_all(trees)
            raise
        self._trees = trees
        self._key = (binds, masks)


def _mask(tree: int, relative: str) -> None:
    """Cover ``relative`` in the detached ``tree`` as ``paths.mask`` does in a
    child: /dev/null over a file, an empty read-only tmpfs over a directory.
    An entry gone meanwhile needs no cover."""
    try:
        is_dir = stat.S_ISDIR(os.stat(relative, dir_fd=tree, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return
    cover = (
        libc.fsmount_new("tmpfs", {"size": "4k", "mode": "0755"}, _EMPTY_ATTR)
        if is_dir
        else libc.open_tree("/dev/null", recursive=False)
    )
    try:
        libc.move_mount(cover, relative, dirfd=tree)
    finally:
        os.close(cover)


def close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        os.close(fd)
