"""Safe extraction of a tar (or tar.gz, tar.bz2, tar.xz) archive into an image rootfs.

The archive is read once, member by member (``tarfile`` stream mode), and
every member is created by hand through directory fds opened with
``O_NOFOLLOW``, never through a path string, so:

- a name that is absolute or has a ``..`` component is refused;
- no member is ever written through a symlink (an earlier member ``lib ->
  /etc`` followed by ``lib/passwd`` is refused: openat(2) with O_NOFOLLOW
  fails on the link);
- a relative symlink whose target climbs out of the tree is refused; an
  absolute one is kept, since inside the container it resolves against the
  container's root (the image), as symlinks in any rootfs do;
- a hard link may only name a file extracted earlier in the same archive;
- device nodes are refused (every container gets its own minimal ``/dev``);
- the sum of the members' sizes and their number are capped.

The caller extracts into a fresh directory and deletes it on any error, so a
refused archive leaves nothing behind (see ``store.ImportJob``).

With ``whiteouts=True`` the same rules unpack one layer of a registry image
(``layers.py``), where the OCI layer format (image-spec layer.md) adds:

- ``.wh.<name>`` becomes an overlayfs whiteout for ``name``: a character
  device 0/0 (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
  directories"), so a stack of layer dirs works as overlayfs lowerdirs;
- ``.wh..wh..opq`` marks its directory opaque: ``trusted.overlay.opaque=y``;
- other ``.wh..wh.`` names (aufs's hard-link bookkeeping) are skipped;
- device nodes are skipped rather than refused: old images carry a ``/dev``,
  and every container gets its own ``/dev`` anyway.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from runtime.errors import InvalidArchive, TooLarge

log = logging.getLogger("mydocker.images")

MAX_MEMBERS = 1_000_000
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class ExtractStats:
    files: int
    size_bytes: int


def extract(
    archive: IO[bytes],
    dest: str,
    *,
    max_bytes: int,
    max_members: int = MAX_MEMBERS,
    progress: Callable[[int, int], None] | None = None,
    whiteouts: bool = False,
    compressed: bool = True,
) -> ExtractStats:
    """Extract ``archive`` into the existing empty directory ``dest``.

    Raises ``InvalidArchive`` (with the member's name and the reason) or
    ``TooLarge``; ``progress(files, bytes)`` is called every 64 MiB.
    ``whiteouts``: the archive is an image layer (see the module's docstring).
    ``compressed=False``: the stream is a plain tar (the caller decompressed it).
    """
    extractor = _Extractor(dest, max_bytes, max_members, progress, whiteouts)
    try:
        try:
            tar = tarfile.open(fileobj=archive, mode="r|*" if compressed else "r|")
        except tarfile.TarError as err:
            raise InvalidArchive(f"not a tar or compressed tar archive: {err}") from err
        with tar:
            try:
                for member in tar:
                    extractor.member(tar, member)
            except (tarfile.TarError, EOFError, zlib.error) as err:
                raise InvalidArchive(f"damaged archive: {err}") from err
        extractor.finish()
    finally:
        extractor.close()
    return ExtractStats(files=extractor.count, size_bytes=extractor.total)


def _parts(name: str) -> tuple[str, ...]:
    if name.startswith("/"):
        raise InvalidArchive(f"{name!r}: absolute path names are not allowed")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidArchive(f"{name!r}: '..' in a path name is not allowed")
    return parts


def _inside(parts: tuple[str, ...], target: str) -> bool:
    """Whether relative symlink ``target`` at ``parts`` stays in the tree, lexically."""
    depth = len(parts) - 1  # the link's directory
    for comp in target.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                return False
        elif comp not in ("", "."):
            depth += 1
    return True


class _Extractor:
    def __init__(
        self,
        dest: str,
        max_bytes: int,
        max_members: int,
        progress: Callable[[int, int], None] | None,
        whiteouts: bool = False,
    ) -> None:
        self.root_fd = os.open(dest, _DIR_FLAGS)
        self.whiteouts = whiteouts
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.progress = progress
        # Like tar(1): owners are kept only when extracting as root.
        self.chown = os.geteuid() == 0
        self.count = 0
        self.total = 0
        self._next_report = 64 << 20
        # Directory metadata is applied last, deepest first, so a read-only
        # directory does not block its own contents (what tar(1) does too).
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}

    def close(self) -> None:
        os.close(self.root_fd)

    # -- walking --------------------------------------------------------
    def _open_dir(self, parts: tuple[str, ...], name: str, create: bool) -> int:
        fd = os.dup(self.root_fd)
        try:
            for index, comp in enumerate(parts):
                try:
                    next_fd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise InvalidArchive(
                            f"{name!r}: {'/'.join(parts[: index + 1])} is not in the archive"
                        ) from None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    next_fd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as err:
                    if err.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise InvalidArchive(
                            f"{name!r}: {'/'.join(parts[: index + 1])} is a symlink or a file, "
                            "and members are never written through one"
                        ) from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- members --------------------------------------------------------
    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self.count += 1
        if self.count > self.max_members:
            raise TooLarge(f"the archive has more than {self.max_members} members")
        name = info.name
        parts = _parts(name)
        if self.whiteouts and (info.ischr() or info.isblk()):
            log.debug("layer member %r: device node skipped", name)
            return
        if self.whiteouts and parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(info, parts)
            return
        if info.ischr() or info.isblk():
            raise InvalidArchive(
                f"{name!r}: device nodes are not allowed (each container gets its own /dev)"
            )
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk() or info.isfifo()):
            raise InvalidArchive(f"{name!r}: unsupported member type {info.type!r}")
        if not parts:
            if not info.isdir():
                raise InvalidArchive(f"{name!r}: the archive's root must be a directory")
            self.dirs[()] = info
            return
        if info.issym() and not info.linkname.startswith("/") and not _inside(parts, info.linkname):
            raise InvalidArchive(f"{name!r}: symlink to {info.linkname!r} points out of the image")
        if info.isreg():
            self.total += info.size
            if self.total > self.max_bytes:
                raise TooLarge(f"the archive's contents exceed the cap of {self.max_bytes} bytes")
        parent = self._open_dir(parts[:-1], name, create=True)
        try:
            self._create(tar, info, parts, parent)
        finally:
            os.close(parent)
        if self.progress is not None and self.total >= self._next_report:
            self._next_report += 64 << 20
            self.progress(self.count, self.total)

    def _whiteout(self, info: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        leaf = parts[-1]
        if leaf.startswith(WHITEOUT_PREFIX * 2) and leaf != OPAQUE_WHITEOUT:
            return  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to extract
        parent = self._open_dir(parts[:-1], info.name, create=True)
        try:
            if leaf == OPAQUE_WHITEOUT:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
                return
            hidden = leaf[len(WHITEOUT_PREFIX) :]
            if not hidden:
                raise InvalidArchive(f"{info.name!r}: a whiteout that names nothing")
            try:
                existing = os.lstat(hidden, dir_fd=parent)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                if stat.S_ISDIR(existing.st_mode):
                    raise InvalidArchive(f"{info.name!r}: whites out a directory of its own layer")
                os.unlink(hidden, dir_fd=parent)
            os.mknod(hidden, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
        finally:
            os.close(parent)

    def _create(
        self, tar: tarfile.TarFile, info: tarfile.TarInfo, parts: tuple[str, ...], parent: int
    ) -> None:
        leaf = parts[-1]
        try:
            existing = os.lstat(leaf, dir_fd=parent)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                if info.isdir():
                    self.dirs[parts] = info  # a later entry for the same directory wins
                    return
                raise InvalidArchive(f"{info.name!r}: would replace a directory")
            os.unlink(leaf, dir_fd=parent)  # tar(1): the later member wins
        mode = info.mode & 0o7777
        if info.isdir():
            os.mkdir(leaf, 0o700, dir_fd=parent)
            self.dirs[parts] = info
        elif info.isreg():
            self._write_file(tar, info, leaf, parent, mode)
        elif info.issym():
            os.symlink(info.linkname, leaf, dir_fd=parent)
            self._owner_and_times(info, leaf, parent)
        elif info.islnk():
            self._hard_link(info, leaf, parent)
        else:  # fifo
            os.mkfifo(leaf, 0o600, dir_fd=parent)
            self._owner_and_times(info, leaf, parent, mode)

    def _write_file(
        self, tar: tarfile.TarFile, info: tarfile.TarInfo, leaf: str, parent: int, mode: int
    ) -> None:
        source = tar.extractfile(info)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(leaf, flags, 0o600, dir_fd=parent)
        try:
            if source is not None:
                while chunk := source.read(_CHUNK):
                    _write_all(fd, chunk)
            # chown(2) clears set-user-ID bits, so the mode comes after it.
            if self.chown:
                os.fchown(fd, info.uid, info.gid)
            os.fchmod(fd, mode)
            os.utime(fd, (info.mtime, info.mtime))
        finally:
            os.close(fd)

    def _hard_link(self, info: tarfile.TarInfo, leaf: str, parent: int) -> None:
        try:
            target = _parts(info.linkname)
        except InvalidArchive as err:
            raise InvalidArchive(f"{info.name!r}: hard link target {err}") from None
        if not target:
            raise InvalidArchive(f"{info.name!r}: hard link to the archive's root")
        source_dir = self._open_dir(target[:-1], info.name, create=False)
        try:
            os.link(
                target[-1],
                leaf,
                src_dir_fd=source_dir,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        except FileNotFoundError:
            raise InvalidArchive(
                f"{info.name!r}: hard link to {info.linkname!r}, which is not in the archive"
            ) from None
        except PermissionError:
            raise InvalidArchive(
                f"{info.name!r}: hard link to {info.linkname!r}, which is a directory"
            ) from None
        finally:
            os.close(source_dir)

    def _owner_and_times(
        self, info: tarfile.TarInfo, leaf: str, parent: int, mode: int | None = None
    ) -> None:
        if self.chown:
            os.chown(leaf, info.uid, info.gid, dir_fd=parent, follow_symlinks=False)
        if mode is not None:
            os.chmod(leaf, mode, dir_fd=parent)
        os.utime(leaf, (info.mtime, info.mtime), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Apply the directories' owners, modes and times, deepest first."""
        for parts in sorted(self.dirs, key=len, reverse=True):
            info = self.dirs[parts]
            fd = self._open_dir(parts, info.name, create=False)
            try:
                if self.chown:
                    os.fchown(fd, info.uid, info.gid)
                os.fchmod(fd, info.mode & 0o7777)
                os.utime(fd, (info.mtime, info.mtime))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
