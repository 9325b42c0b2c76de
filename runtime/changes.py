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


class Layer:
    def __init__(
        self,
        upper: str | None,
        lower: str,
        skip: tuple[str, ...] = RUNTIME_MOUNTS,
        host_id: int | None = None,
    ) -> None:
        self.upper = upper  # None: nothing written to disk (read_only)
        self.lower = lower
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
        return cls(upper, plan.lower, RUNTIME_MOUNTS + mounts, record.spec.security.userns_host_id)

    def _skipped(self, path: str) -> bool:
        return any(path == s or path.startswith(s.rstrip("/") + "/") for s in self.skip)

    def _open(self, path: str | None) -> int | None:
        if path is None:
            return None
        try:
            return os.open(path, _DIR)
        except FileNotFoundError:
            return None

    # -- changes ------------------------------------------------------------
    def changes(self) -> list[Change]:
        upper, lower = self._open(self.upper), self._open(self.lower)
        found: list[Change] = []
        try:
            if upper is not None:
                self._diff(upper, lower, "/", found)
        finally:
            for fd in (upper, lower):
                if fd is not None:
                    os.close(fd)
        return sorted(found, key=lambda change: change.path)

    def _diff(self, upper: int, lower: int | None, where: str, found: list[Change]) -> None:
        for name in sorted(os.listdir(upper)):
            path = posixpath.join(where, name)
            if self._skipped(path):
                continue
            st = os.stat(name, dir_fd=upper, follow_symlinks=False)
            below = _lstat(lower, name)
            if _whiteout(st):
                if below is not None:
                    found.append(Change(path, Kind.deleted))
                continue
            found.append(Change(path, Kind.added if below is None else Kind.modified))
            if not stat.S_ISDIR(st.st_mode):
                continue
            child = os.open(name, _DIR, dir_fd=upper)
            opaque = _opaque(upper, name)
            child_lower = None if opaque else _open_dir(lower, name)
            try:
                self._diff(child, child_lower, path, found)
            finally:
                os.close(child)
                if child_lower is not None:
                    os.close(child_lower)

    # -- export -------------------------------------------------------------
    def export(self) -> Iterator[bytes]:
        """The merged root as a tar, streamed as it is read."""
        return tar_stream(self._fill)

    def _ids(self, uid: int, gid: int) -> tuple[int, int]:
        if self.host_id is None:
            return uid, gid
        return max(uid - self.host_id, 0), max(gid - self.host_id, 0)

    def _fill(self, tar: tarfile.TarFile) -> None:
        upper, lower = self._open(self.upper), self._open(self.lower)
        try:
            self._merge(tar, upper, lower, "/", "")
        finally:
            for fd in (upper, lower):
                if fd is not None:
                    os.close(fd)

    def _merge(
        self, tar: tarfile.TarFile, upper: int | None, lower: int | None, where: str, arc: str
    ) -> None:
        """Add the entries of one directory (container path ``where``, named
        ``arc...`` in the tar): the upper's where it has them (a whiteout
        hides the lower's), the lower's elsewhere."""
        for name in sorted(_names(upper) | _names(lower)):
            self._add(tar, upper, lower, name, posixpath.join(where, name), f"{arc}{name}")

    def _add(
        self,
        tar: tarfile.TarFile,
        upper: int | None,
        lower: int | None,
        name: str,
        path: str,
        arcname: str,
    ) -> None:
        top = _lstat(upper, name)
        if top is not None and _whiteout(top):
            return
        source = upper if top is not None else lower
        assert source is not None
        st = add_entry(tar, source, name, arcname, self._ids)
        if st is None or not stat.S_ISDIR(st.st_mode) or self._skipped(path):
            return
        child_upper, child_lower = self._children(upper, lower, name)
        try:
            self._merge(tar, child_upper, child_lower, path, f"{arcname}/")
        finally:
            _close(child_upper, child_lower)

    def _children(
        self, upper: int | None, lower: int | None, name: str
    ) -> tuple[int | None, int | None]:
        """Fds of directory ``name`` in each tree; the lower's only where the
        upper does not hide it (a whiteout, a non-directory, an opaque one)."""
        top = _lstat(upper, name)
        if top is None:
            return None, _open_dir(lower, name)
        if not stat.S_ISDIR(top.st_mode):
            return None, None
        assert upper is not None
        return _open_dir(upper, name), None if _opaque(upper, name) else _open_dir(lower, name)

    def _descend(self, parts: list[str]) -> tuple[int | None, int | None]:
        """Fds of directory ``parts`` in each tree (the caller closes them)."""
        upper, lower = self._open(self.upper), self._open(self.lower)
        for part in parts:
            children = self._children(upper, lower, part)
            _close(upper, lower)
            upper, lower = children
        return upper, lower

    # -- a path of a stopped container ----------------------------------------
    def _lookup(self, parts: list[str]) -> tuple[os.stat_result, str] | None:
        """The merged entry at ``parts`` (no link followed): its stat and,
        for a link, its target; ``None`` when there is none."""
        upper, lower = self._descend(parts[:-1])
        try:
            for fd in (upper, lower):
                st = _lstat(fd, parts[-1])
                if st is None:
                    continue
                if _whiteout(st):
                    return None
                assert fd is not None
                link = os.readlink(parts[-1], dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
                return st, link
            return None
        finally:
            _close(upper, lower)

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
            st, target = os.stat(self.lower), ""
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

        def fill(tar: tarfile.TarFile) -> None:
            upper, lower = self._descend(parts[:-1])
            try:
                if parts:
                    where = "/" + "/".join(parts)
                    self._add(tar, upper, lower, parts[-1], where, path_stat.name)
                else:
                    self._merge(tar, upper, lower, "/", "./")
            finally:
                _close(upper, lower)

        return path_stat, tar_stream(fill)


def changes(record: ContainerRecord) -> list[Change]:
    return Layer.of(record).changes()


def export(record: ContainerRecord) -> Iterator[bytes]:
    return Layer.of(record).export()
