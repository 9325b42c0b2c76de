"""A container's writable layer: what changed (``docker diff``) and the
whole root as a tar (``docker export``), read from disk.

    Layer.of(record)   the image's root (lower) and the overlay's upper dir
    Layer.changes()    ``Change``s, sorted by path: added, modified, deleted
    Layer.export()     a tar of the root as the container sees it (without mounts)
    Layer.stat/read    a path of a stopped container (docker cp out of it), its
                       links resolved in the merged root, never outside it

overlayfs(5) keeps a container's writes in its upper dir: a file or
directory there is new (nothing at its path below) or modified (something
is); a character device 0/0 is a whiteout (deleted below); a directory with
the ``overlay.opaque`` xattr (``trusted.`` or, mounted with ``userxattr`` in a
user namespace, ``user.``) hides everything below it.  Both trees are read
from directory fds one name at a time without following links, so an
image's link can point nothing at the host.  The upper dir stays on disk
until the container is removed, so both work on a stopped container too.

The runtime's own mount points (/proc, /sys, /dev, the files it binds over
/etc, the user's mounts) are left out: what is mounted there is not the
layer's (Docker leaves them out too).  A ``read_only`` container's upper dir
is a tmpfs in its own mount namespace: its root never changes, so it has no
changes and its export is the image.  The ``host`` image has no layer at
all: its root is read-only binds of the host's directories and private
tmpfs, gone with the container, so both verbs refuse it (409) rather than
answer with something that is not the container's.
"""

from __future__ import annotations

import enum
import errno
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.archive import PathStat, add_entry, base_name, tar_stream
from runtime.errors import InvalidArgument, InvalidState, NotFound
from runtime.records import ContainerRecord
from runtime.spec import LAYER_RW

#: Mount points of the runtime's, and below them nothing of the layer's.
RUNTIME_MOUNTS = ("/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
#: Links followed in one path at most (path_resolution(7): 40 on Linux).
MAX_LINKS = 40
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Kind(enum.IntEnum):
    """Docker's change kinds, by their numbers in its API."""

    modified = 0
    added = 1
    deleted = 2


@dataclass(frozen=True)
class Change:
    path: str
    kind: Kind


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(dir_fd: int, name: str) -> bool:
    path = f"/proc/self/fd/{dir_fd}/{name}"
    for attribute in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, attribute, follow_symlinks=False) == b"y":
                return True
        except OSError as err:
            if err.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    return False


def _lstat(dir_fd: int | None, name: str) -> os.stat_result | None:
    if dir_fd is None:
        return None
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(dir_fd: int | None, name: str) -> int | None:
    if dir_fd is None:
        return None
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError, OSError):
        return None  # not a directory there (ELOOP: a link)


def _close(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)


def _names(dir_fd: int | None) -> set[str]:
    return set(os.listdir(dir_fd)) if dir_fd is not None else set()


Trees = list[int | None]


def _top(trees: Trees, name: str) -> tuple[int, os.stat_result] | None:
    """The topmost ``name`` among the trees (top first): its tree's fd and
    stat; ``None`` when no tree has it or the topmost is a whiteout."""
    for fd in trees:
        st = _lstat(fd, name)
        if st is None:
            continue
        if _whiteout(st):
            return None
        assert fd is not None
        return fd, st
    return None


def _below(trees: Trees, name: str) -> Trees:
    """Fds of directory ``name`` in each tree, where it is seen: a whiteout,
    a non-directory or an opaque directory hides the trees beneath."""
    found: Trees = []
    hidden = False
    for fd in trees:
        st = None if hidden else _lstat(fd, name)
        if st is None or _whiteout(st) or not stat.S_ISDIR(st.st_mode):
            found.append(None)
            hidden = hidden or st is not None
            continue
        assert fd is not None
        found.append(_open_dir(fd, name))
        hidden = _opaque(fd, name)
    return found


def _all_names(trees: Trees) -> set[str]:
    names: set[str] = set()
    for fd in trees:
        names |= _names(fd)
    return names


class Layer:
    def __init__(
        self,
        upper: str | None,
        lower: str | tuple[str, ...],
        skip: tuple[str, ...] = RUNTIME_MOUNTS,
        host_id: int | None = None,
    ) -> None:
        self.upper = upper  # None: nothing written to disk (read_only)
        #: The image's layers, top first (a layered image has several).
        self.lowers = (lower,) if isinstance(lower, str) else lower
        self.skip = skip
        self.host_id = host_id

    @classmethod
    def of(cls, record: ContainerRecord) -> Layer:
        plan = record.spec.rootfs
        if plan is None or plan.lower is None or plan.layer is None:
            raise InvalidState(
                f"container {record.id} runs the host image, which has no writable layer: "
                "its root is read-only binds of the host and private tmpfs "
                "(/tmp, /run, /var/tmp) that go with it, so there are no changes to "
                "list or root to export"
            )
        upper = None if plan.read_only else os.path.join(plan.layer, LAYER_RW, "upper")
        mounts = tuple(m.target for m in record.spec.mounts)
        lowers = (plan.lower, *plan.more_lowers)
        return cls(upper, lowers, RUNTIME_MOUNTS + mounts, record.spec.security.userns_host_id)

    def _skipped(self, path: str) -> bool:
        return any(path == s or path.startswith(s.rstrip("/") + "/") for s in self.skip)

    def _open(self, path: str | None) -> int | None:
        if path is None:
            return None
        try:
            return os.open(path, _DIR)
        except FileNotFoundError:
            return None

    def _roots(self) -> Trees:
        return [self._open(self.upper), *(self._open(p) for p in self.lowers)]

    # -- changes ------------------------------------------------------------
    def changes(self) -> list[Change]:
        trees = self._roots()
        found: list[Change] = []
        try:
            if trees[0] is not None:
                self._diff(trees[0], trees[1:], "/", found)
        finally:
            _close(*trees)
        return sorted(found, key=lambda change: change.path)

    def _diff(self, upper: int, lowers: Trees, where: str, found: list[Change]) -> None:
        for name in sorted(os.listdir(upper)):
            path = posixpath.join(where, name)
            if self._skipped(path):
                continue
            st = os.stat(name, dir_fd=upper, follow_symlinks=False)
            below = _top(lowers, name)
            if _whiteout(st):
                if below is not None:
                    found.append(Change(path, Kind.deleted))
                continue
            found.append(Change(path, Kind.added if below is None else Kind.modified))
            if not stat.S_ISDIR(st.st_mode):
                continue
            mark = len(found)
            child = os.open(name, _DIR, dir_fd=upper)
            child_lowers: Trees = (
                [None] * len(lowers) if _opaque(upper, name) else _below(lowers, name)
            )
            try:
                self._diff(child, child_lowers, path, found)
                # A directory copied up only to hold the runtime's mount
                # points (/etc for its files) is not the user's change:
                # Docker makes those in a layer of its own (the "init" one).
                if (
                    below is not None
                    and len(found) == mark
                    and self._holds_mounts_only(child, path)
                ):
                    found.pop()
            finally:
                _close(child, *child_lowers)

    def _holds_mounts_only(self, directory: int, where: str) -> bool:
        names = os.listdir(directory)
        return bool(names) and all(self._skipped(posixpath.join(where, n)) for n in names)

    # -- export -------------------------------------------------------------
    def export(self) -> Iterator[bytes]:
        """The merged root as a tar, streamed as it is read."""
        return self._tar([], "")

    def _ids(self, uid: int, gid: int) -> tuple[int, int]:
        if self.host_id is None:
            return uid, gid
        return max(uid - self.host_id, 0), max(gid - self.host_id, 0)

    def _tar(self, parts: list[str], name: str) -> Iterator[bytes]:
        """A tar of the merged entry at ``parts`` named ``name`` (of the
        root's contents, prefixed ``name``, when ``parts`` is empty)."""

        def fill(tar: tarfile.TarFile) -> None:
            trees = self._descend(parts[:-1])
            try:
                if parts:
                    self._add(tar, trees, parts[-1], "/" + "/".join(parts), name)
                else:
                    self._merge(tar, trees, "/", name)
            finally:
                _close(*trees)

        return tar_stream(fill)

    def _merge(self, tar: tarfile.TarFile, trees: Trees, where: str, arc: str) -> None:
        """Add the entries of one directory (container path ``where``, named
        ``arc...`` in the tar), each from the topmost tree that has it."""
        for name in sorted(_all_names(trees)):
            self._add(tar, trees, name, posixpath.join(where, name), f"{arc}{name}")

    def _add(self, tar: tarfile.TarFile, trees: Trees, name: str, path: str, arcname: str) -> None:
        top = _top(trees, name)
        if top is None:
            return
        st = add_entry(tar, top[0], name, arcname, self._ids)
        if st is None or not stat.S_ISDIR(st.st_mode) or self._skipped(path):
            return
        children = _below(trees, name)
        try:
            self._merge(tar, children, path, f"{arcname}/")
        finally:
            _close(*children)

    def _descend(self, parts: list[str]) -> Trees:
        """Fds of directory ``parts`` in each tree (the caller closes them)."""
        trees = self._roots()
        for part in parts:
            children = _below(trees, part)
            _close(*trees)
            trees = children
        return trees

    # -- a path of a stopped container ----------------------------------------
    def _lookup(self, parts: list[str]) -> tuple[os.stat_result, str] | None:
        """The merged entry at ``parts`` (no link followed): its stat and,
        for a link, its target; ``None`` when there is none."""
        trees = self._descend(parts[:-1])
        try:
            top = _top(trees, parts[-1])
            if top is None:
                return None
            fd, st = top
            link = os.readlink(parts[-1], dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
            return st, link
        finally:
            _close(*trees)

    def resolve(self, path: str) -> list[str]:
        """``path``'s components with its links resolved in the merged root
        (``..`` stops at the root, absolute links start there); the last one
        is followed only with a trailing ``/`` or ``/.``."""
        follow_last = path.endswith("/") or path.endswith("/.")
        todo = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                done = done[:-1]
                continue
            found = self._lookup([*done, part])
            if found is None:
                raise NotFound("path", path)
            st, target = found
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > MAX_LINKS:
                    raise InvalidArgument("path", f"{path}: too many levels of links")
                done = [] if target.startswith("/") else done
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                raise InvalidArgument("path", f"{path}: not a directory")
            done.append(part)
        return done

    def stat(self, path: str) -> PathStat:
        parts = self.resolve(path)
        if not parts:
            st, target = os.stat(self.lowers[0]), ""
        else:
            found = self._lookup(parts)
            if found is None:
                raise NotFound("path", path)
            st, target = found
        return PathStat(base_name(path), st.st_size, st.st_mode, st.st_mtime_ns, target)

    def read(self, path: str) -> tuple[PathStat, Iterator[bytes]]:
        """``Root.read`` for a stopped container, from its layers on disk."""
        path_stat = self.stat(path)
        parts = self.resolve(path)
        return path_stat, self._tar(parts, path_stat.name if parts else "./")


def changes(record: ContainerRecord) -> list[Change]:
    return Layer.of(record).changes()


def export(record: ContainerRecord) -> Iterator[bytes]:
    return Layer.of(record).export()
