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

The whole root, too: a tmpfs (fsmount(2)) with the skeleton, the usr-merge
links and a copy of each tree mounted in it.  A container that can write
nothing into that tmpfs (``shareable``) gets one recursive copy of it and
attaches it as its root with one move_mount(2), instead of mounting a tmpfs
and making a dozen directories and links in it (0.2-0.3 ms of the child's
time, ``python -m bench.steps``).  The copies share the tmpfs itself, so the
rule is strict: no user namespace, no CAP_SYS_ADMIN (which could remount
the root read-write), and no path the child creates (workdir, mount
targets) in the root's own directories; the child makes its
root read-only (a flag of its own mount) before the command runs.  Any
other container gets the trees one by one and builds its own tmpfs.

A plan whose masks differ from the trees' (``/etc`` changed:
``hostview.EtcMasks`` saw it) gets new trees.  Where the kernel refuses to
build them, ``copies`` answers ``None`` from then on and the child builds
its view itself, as before; where it refuses only the root, the trees are
given one by one.
"""

from __future__ import annotations

import logging
import os
import stat

from runtime import libc
from runtime.images.builtin import HOST_TMPFS
from runtime.images.hostview import ROOT_SIZE, SKELETON
from runtime.spec import ContainerSpec, RootfsPlan, under

log = logging.getLogger("mydocker.images.viewtrees")

#: The key of the whole root among ``copies``' trees.
ROOT = "/"
#: Where a container's own mounts (not the shared root tmpfs) hold what the
#: child creates: its private tmpfs and kernel filesystems.
_OWN_MOUNTS = (*HOST_TMPFS, "/dev", "/proc", "/sys")

#: The empty directory mask: read-only, no device nodes, nothing to run.
_EMPTY_ATTR = (
    libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC
)


class ViewTrees:
    """The detached trees of one ``(binds, masks)``; rebuilt when they change."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._trees: dict[str, int] = {}
        self._root = -1
        self._usable = True

    def copies(self, plan: RootfsPlan, whole: bool = False) -> dict[str, int] | None:
        """A fresh copy of each tree of ``plan``'s view, by path, masks in;
        with ``whole`` (see ``shareable``), one copy of the whole root instead,
        under ``ROOT``.  ``None`` if this kernel cannot hold them (the child
        then builds the view itself).  The caller owns the fds: the child
        attaches them, the launcher closes its own after the clone."""
        if not self._usable:
            return None
        key = (plan.binds, plan.masks, plan.links)
        if key != self._key:
            try:
                self._build(plan)
            except OSError as err:
                log.warning("host view trees unavailable (%s): each child builds its own", err)
                self.close()
                self._usable = False
                return None
        if whole and self._root >= 0:
            return {ROOT: libc.open_tree("", dirfd=self._root)}
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
        if self._root >= 0:
            os.close(self._root)
            self._root = -1
        self._key = None

    def _build(self, plan: RootfsPlan) -> None:
        self.close()
        trees: dict[str, int] = {}
        try:
            for path in plan.binds:
                fd = trees[path] = libc.open_tree(path, recursive=True)
                for mask in plan.masks:
                    if mask.startswith(path + "/"):
                        _mask(fd, os.path.relpath(mask, path))
                libc.mount_setattr("", libc.MOUNT_ATTR_RDONLY, recursive=True, dirfd=fd)
        except OSError:
            close_all(trees)
            raise
        self._trees = trees
        self._key = (plan.binds, plan.masks, plan.links)
        try:
            self._root = _root(plan, trees)
        except OSError as err:
            log.warning("host view root unavailable (%s): each child makes its own", err)


def shareable(spec: ContainerSpec) -> bool:
    """Whether ``spec``'s child may attach a copy of the shared root: it can
    write nothing into the root's tmpfs, neither while it sets up (every path
    it creates is in a mount of its own, in a read-only tree, or already
    there) nor after (no CAP_SYS_ADMIN to remount it, no user namespace)."""
    plan = spec.rootfs
    if plan is None or plan.lower is not None or spec.security.userns_host_id is not None:
        return False
    if "SYS_ADMIN" in spec.security.capabilities:
        return False
    elsewhere = (*_OWN_MOUNTS, *plan.binds, *(path for path, _ in plan.links))
    # Device nodes go under /dev (runtime/options.py: ``Device``), its own tmpfs.
    created = [spec.workdir, *(mount.target for mount in spec.all_mounts())]
    return all(path == "/" or path in SKELETON or under(path, elsewhere) for path in created)


def _root(plan: RootfsPlan, trees: dict[str, int]) -> int:
    """The view's root as one detached tree: the skeleton, the links, and a
    copy of each tree at its path (as ``rootfs.mount_host_view`` builds it)."""
    attr = libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV
    root = libc.fsmount_new("tmpfs", {"size": str(ROOT_SIZE), "mode": "0755"}, attr)
    try:
        for path, mode in SKELETON.items():
            os.mkdir(path[1:], mode, dir_fd=root)
            os.chmod(path[1:], mode, dir_fd=root)  # mkdir(2) applies the umask
        for path, target in plan.links:
            os.symlink(target, path[1:], dir_fd=root)
        for path, tree in trees.items():
            _make_dirs(root, path[1:])
            copy = libc.open_tree("", dirfd=tree)
            try:
                libc.move_mount(copy, path[1:], dirfd=root)
            finally:
                os.close(copy)
    except OSError:
        os.close(root)
        raise
    return root


def _make_dirs(root: int, relative: str) -> None:
    parts = relative.split("/")
    for depth in range(1, len(parts) + 1):
        try:
            os.mkdir("/".join(parts[:depth]), 0o755, dir_fd=root)
        except FileExistsError:
            pass


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
