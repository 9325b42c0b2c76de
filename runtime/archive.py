"""Files into and out of a running container (``docker cp``), never outside its root.

    Root.of(record)     the container's root as a directory fd (/proc/PID/root),
                        its process checked against the record; a context manager
    Root.stat(path)     ``PathStat`` of a path (the last link not followed)
    Root.read(path)     (``PathStat``, tar stream of the resource, named by its base)
    Root.extract(path, fileobj, ...)   a tar stream unpacked into directory ``path``

Safety.  A container's paths mean what they mean inside it: its symlinks may
point anywhere ("/etc" -> the host's /etc if followed from outside).  So
every path given is resolved with openat2(2) and ``RESOLVE_IN_ROOT`` against
the root fd: ``..`` stops at the container's root and absolute links start
there.  Below that, trees are walked from directory fds one name at a time
with ``O_NOFOLLOW``: a link is archived as a link, never followed.  On
extraction each member's directory is opened with ``RESOLVE_BENEATH`` from
the extraction point, so a member (``../x``) or a link already there
(``evil -> /``) that would lead out of it is refused (``InvalidArchive``,
400); a file is created with ``O_EXCL | O_NOFOLLOW`` after whatever was at
its name is unlinked, so nothing is ever written through a link.

The root is the one the container sees (its mount namespace through
/proc/PID/root), so a path on one of its mounts reaches that mount; /proc and
/sys are archived as empty directories.  Only a running container has a
process to reach its root through: a created one (its child builds its root
once started) and an exited one are copied from and to their files on disk
(runtime/offline.py; runtime/files.py chooses).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import posixpath
import signal
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from runtime import libc, pids
from runtime.errors import InvalidArchive, InvalidArgument, InvalidState, NotFound
from runtime.records import EXITED, ContainerRecord

log = logging.getLogger("mydocker.runtime")

CHUNK = 1 << 16
#: How long a created container's root may take to be built before a copy
#: is refused (the child builds it right after clone).
ROOT_WAIT = 5.0
#: Paths whose contents are the kernel's, not the container's files.
PSEUDO = ("/proc", "/sys")
_IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS
_BENEATH = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS


@dataclass(frozen=True)
class PathStat:
    """What ``stat`` says of a path: its base name, size, ``st_mode``,
    mtime (ns) and, for a link, its target."""

    name: str
    size: int
    mode: int
    mtime_ns: int
    link_target: str = ""


def clean(path: str) -> str:
    """``path`` as an absolute, lexically clean container path (as Docker's
    ``filepath.Clean``); a trailing ``/.`` is kept (copy the contents)."""
    if not path:
        raise InvalidArgument("path", "must not be empty")
    if "\0" in path:
        raise InvalidArgument("path", "must not contain NUL")
    cleaned = posixpath.normpath("/" + path)
    cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/.") and cleaned != "/":
        return cleaned + "/."
    return cleaned


def base_name(path: str) -> str:
    """The name the resource gets in the archive: its base (``.`` for ``dir/.``)."""
    if path.endswith("/.") and path != "/.":
        return "."
    return posixpath.basename(clean(path).rstrip("/")) or "/"


class Root:
    """A container's root, open as a directory fd; close it (``with``)."""

    def __init__(self, fd: int, container_id: str, host_id: int | None) -> None:
        self.fd = fd
        self.container_id = container_id
        #: Host uid of the container's uid 0 (user namespace), else None.
        self.host_id = host_id

    @classmethod
    def of(cls, record: ContainerRecord) -> Root:
        if record.status == EXITED:
            raise InvalidState(
                f"container {record.id} is not running: files are copied through its "
                "running process (start it first)"
            )
        pidfd = pids.open_pidfd(record.pid, record.pid_start_time)
        if pidfd is None:
            raise InvalidState(f"container {record.id} is not running (its process is gone)")
        try:
            fd = _open_root(record, pidfd)
        finally:
            os.close(pidfd)
        return cls(fd, record.id, record.spec.security.userns_host_id)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- resolving --------------------------------------------------------
    def _not_found(self, path: str) -> NotFound:
        return NotFound("path", f"{path} in container {self.container_id}")

    def locate(self, path: str) -> tuple[int, str]:
        """(fd of its directory, its name) for ``path``: every component but
        the last resolved in the root; the last followed only with a
        trailing ``/`` or ``/.``.  The caller closes the fd."""
        cleaned = clean(path)
        follow = path.endswith("/") or path.endswith("/.")
        target, name = (cleaned, ".") if follow else posixpath.split(cleaned)
        if cleaned == "/":
            target, name = "/", "."
        try:
            fd = libc.openat2(self.fd, target.lstrip("/") or ".", _PATH_DIR, _IN_ROOT)
        except FileNotFoundError as err:
            raise self._not_found(path) from err
        except NotADirectoryError as err:
            raise InvalidArgument("path", f"{path}: not a directory") from err
        return fd, name

    def stat(self, path: str) -> PathStat:
        fd, name = self.locate(path)
        try:
            return self._stat(fd, name, path)
        finally:
            os.close(fd)

    def _stat(self, fd: int, name: str, path: str) -> PathStat:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError as err:
            raise self._not_found(path) from err
        link = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        return PathStat(base_name(path), st.st_size, st.st_mode, st.st_mtime_ns, link)

    # -- reading ------------------------------------------------------------
    def read(self, path: str, arcname: str | None = None) -> tuple[PathStat, Iterator[bytes]]:
        """The resource's stat, and a tar of it (a directory with its tree),
        named ``arcname`` (default: its base name).

        The stat is taken now (404 before anything is sent); the tar is
        written by a thread into a pipe as the iterator is read, and the
        root fd is the iterator's to close from here on."""
        fd, name = self.locate(path)
        try:
            path_stat = self._stat(fd, name, path)
            if arcname is not None:
                path_stat = dataclasses.replace(path_stat, name=arcname)
        except BaseException:
            os.close(fd)
            raise
        start = posixpath.dirname(clean(path)) if name != "." else clean(path)
        walker = _Walker(self, start)

        def fill(tar: tarfile.TarFile) -> None:
            try:
                walker.add(tar, fd, name, "." if path_stat.name == "/" else path_stat.name)
            finally:
                os.close(fd)

        return path_stat, tar_stream(fill, on_done=self.close)

    # -- extracting -----------------------------------------------------------
    def extract(
        self,
        path: str,
        fileobj: IO[bytes],
        *,
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> int:
        """Unpack the tar (or compressed tar) ``fileobj`` into directory
        ``path``; returns how many members were written."""
        cleaned = clean(path)
        try:
            dest = libc.openat2(self.fd, cleaned.lstrip("/") or ".", _PATH_DIR, _IN_ROOT)
        except FileNotFoundError as err:
            raise self._not_found(path) from err
        except NotADirectoryError as err:
            raise InvalidArgument("path", "extraction point is not a directory") from err
        try:
            unpacker = _Unpacker(self, dest, no_overwrite_dir_non_dir, copy_uid_gid)
            try:
                with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
                    for member in tar:
                        unpacker.member(tar, member)
            except tarfile.TarError as err:
                raise InvalidArchive(f"not a tar archive: {err}") from err
            return unpacker.count
        finally:
            os.close(dest)

    def host_ids(self, uid: int, gid: int) -> tuple[int, int]:
        if self.host_id is None:
            return uid, gid
        return self.host_id + uid, self.host_id + gid

    def container_ids(self, uid: int, gid: int) -> tuple[int, int]:
        if self.host_id is None:
            return uid, gid
        return max(uid - self.host_id, 0), max(gid - self.host_id, 0)


_PATH_DIR = os.O_PATH | os.O_DIRECTORY


def _open_root(record: ContainerRecord, pidfd: int) -> int:
    """/proc/PID/root as an fd, once it is the container's own root (not the
    host's, which a child still building its root shows)."""
    host_root = os.stat("/")
    deadline = time.monotonic() + ROOT_WAIT
    while True:
        fd = os.open(f"/proc/{record.pid}/root", _PATH_DIR | os.O_CLOEXEC)
        try:
            # Still alive after the open: the fd is our process's root, not
            # that of a process that reused its pid.
            signal.pidfd_send_signal(pidfd, 0)
        except ProcessLookupError as err:
            os.close(fd)
            raise InvalidState(f"container {record.id} is not running") from err
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (host_root.st_dev, host_root.st_ino):
            return fd
        os.close(fd)
        if time.monotonic() >= deadline:
            raise InvalidState(f"container {record.id} has no root of its own yet; try again")
        time.sleep(0.01)


class _Walker:
    """Adds a tree to a tar from directory fds, never following a link."""

    def __init__(self, root: Root, start: str) -> None:
        self.root = root
        self.start = start  # the container path of the directory the walk starts in

    def add(self, tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str) -> None:
        self._add(tar, dir_fd, name, arcname, posixpath.normpath(posixpath.join(self.start, name)))

    def _add(self, tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str, where: str) -> None:
        st = add_entry(tar, dir_fd, name, arcname, self.root.container_ids)
        if st is None or not stat.S_ISDIR(st.st_mode) or where in PSEUDO:
            return
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        try:
            for entry in sorted(os.listdir(fd)):
                self._add(tar, fd, entry, f"{arcname}/{entry}", posixpath.join(where, entry))
        finally:
            os.close(fd)


IdMap = Callable[[int, int], tuple[int, int]]


def add_entry(
    tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str, ids: IdMap
) -> os.stat_result | None:
    """Add the entry ``name`` of ``dir_fd`` to ``tar`` (a directory without
    its contents; a link as a link); its stat, or ``None`` if it is gone
    or a socket (which a tar has no place for, as tar(1) leaves them out).
    ``ids`` maps host uid, gid to the container's."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = ids(st.st_uid, st.st_gid)
    info.mtime = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        return st if _add_file(tar, dir_fd, name, info) else None
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(name, dir_fd=dir_fd)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        return None
    tar.addfile(info)
    return st


def _add_file(tar: tarfile.TarFile, dir_fd: int, name: str, info: tarfile.TarInfo) -> bool:
    # O_NONBLOCK: a FIFO swapped in since the stat must not block the open.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        info.size = st.st_size
        tar.addfile(info, _Exactly(f, st.st_size))
    return True


class _Exactly:
    """A file read as exactly ``size`` bytes: zeros if it shrank meanwhile,
    cut if it grew, so the tar's header stays true."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f = f
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        return data


class _Unpacker:
    """Writes tar members under the extraction point's fd."""

    def __init__(self, root: Root, dest: int, no_overwrite: bool, copy_uid_gid: bool) -> None:
        self.root = root
        self.dest = dest
        self.no_overwrite = no_overwrite
        self.copy_uid_gid = copy_uid_gid
        self.count = 0

    def _parts(self, name: str) -> list[str]:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise InvalidArchive(f"{name}: a member may not leave the extraction point (..)")
        return parts

    def _directory(self, parts: list[str], member: str) -> int:
        """The fd of directory ``parts`` under the extraction point, made if
        missing, never reached through a link that leads out of it."""
        relative = "/".join(parts) or "."
        try:
            return libc.openat2(self.dest, relative, _PATH_DIR, _BENEATH)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise self._outside(member, err) from err
        fd = os.dup(self.dest)
        for part in parts:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = libc.openat2(fd, part, _PATH_DIR, _BENEATH)
            except OSError as err:
                os.close(fd)
                raise self._outside(member, err) from err
            os.close(fd)
            fd = child
        return fd

    @staticmethod
    def _outside(member: str, err: OSError) -> InvalidArchive:
        if err.errno in (errno.EXDEV, errno.ELOOP):
            return InvalidArchive(f"{member}: its path leads out of the extraction point")
        if err.errno == errno.ENOTDIR:
            return InvalidArchive(f"{member}: a path component is not a directory")
        return InvalidArchive(f"{member}: {os.strerror(err.errno or errno.EIO)}")

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = self._parts(member.name)
        if not parts:
            return  # "." or "/": the extraction point itself
        parent = self._directory(parts[:-1], member.name)
        try:
            self._write(tar, member, parent, parts[-1])
        finally:
            os.close(parent)
        self.count += 1

    def _clear(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        """Unlink what is at ``name`` unless it is a directory (kept for a
        directory member, refused for another)."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not member.isdir():
                raise InvalidArchive(
                    f"{member.name}: cannot overwrite a directory with a non-directory"
                )
            return
        if member.isdir() and self.no_overwrite:
            raise InvalidArchive(
                f"{member.name}: cannot overwrite a non-directory with a directory"
            )
        os.unlink(name, dir_fd=parent)

    def _ids(self, member: tarfile.TarInfo) -> tuple[int, int]:
        uid, gid = (member.uid, member.gid) if self.copy_uid_gid else (0, 0)
        return self.root.host_ids(uid, gid)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str) -> None:
        self._clear(parent, name, member)
        uid, gid = self._ids(member)
        mode = member.mode & 0o7777
        if member.isdir():
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                pass
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        elif member.isreg():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                source = tar.extractfile(member)
                assert source is not None
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown, which clears set-id bits
                os.utime(fd, ns=(int(member.mtime * 1e9),) * 2)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            self._hard_link(member, parent, name)
        elif member.isfifo():
            os.mkfifo(name, mode, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        else:
            # Device nodes are left out: a container gets its devices from
            # the runtime (and its devices cgroup), not from a copy.
            self.count -= 1

    def _hard_link(self, member: tarfile.TarInfo, parent: int, name: str) -> None:
        parts = self._parts(member.linkname)
        if not parts:
            raise InvalidArchive(f"{member.name}: a hard link to the extraction point")
        source_dir = self._directory(parts[:-1], member.name)
        try:
            os.link(
                parts[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False
            )
        except FileNotFoundError as err:
            raise InvalidArchive(
                f"{member.name}: links to {member.linkname}, not in the archive"
            ) from err
        finally:
            os.close(source_dir)


def tar_stream(
    fill: Callable[[tarfile.TarFile], None], on_done: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """A tar written by ``fill`` on a thread of its own, read as chunks.

    A pipe between them holds at most its buffer: the writer waits for the
    reader.  A reader that stops early closes its end; the writer then
    fails with EPIPE and ends.  ``on_done`` runs once the writer has."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                fill(tar)
        except BrokenPipeError:
            pass  # the reader went away
        except Exception:
            log.exception("writing a tar stream failed; the stream is cut short")
        finally:
            if on_done is not None:
                on_done()

    writer = threading.Thread(target=write, name="tar-writer", daemon=True)

    def chunks() -> Iterator[bytes]:
        writer.start()
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as source:
                while chunk := source.read(CHUNK):
                    yield chunk
        finally:
            writer.join()

    return chunks()


# -- what the runtime facade calls ---------------------------------------------
def stat_path(record: ContainerRecord, path: str) -> PathStat:
    with Root.of(record) as root:
        return root.stat(path)


def read_path(record: ContainerRecord, path: str) -> tuple[PathStat, Iterator[bytes]]:
    root = Root.of(record)
    try:
        return root.read(path)
    except BaseException:
        root.close()
        raise


def extract_in(
    root: Root,
    path: str,
    fileobj: IO[bytes],
    no_overwrite_dir_non_dir: bool = False,
    copy_uid_gid: bool = False,
) -> int:
    """``Root.extract`` of ``root``, which is closed after it."""
    with root:
        return root.extract(
            path,
            fileobj,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            copy_uid_gid=copy_uid_gid,
        )
