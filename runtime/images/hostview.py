"""The ``host`` image: the host's programs, never its data.

A container of the ``host`` image does not see the host's ``/``.  Its root is
a small tmpfs of its own (``runtime.rootfs`` builds it in the child) holding:

    /usr /etc and /lib, /lib32, /lib64, /libx32, /bin, /sbin where present
                 read-only recursive binds of the host's, or the usr-merge
                 symlinks (``/bin -> usr/bin``) the host has in their place
    operator paths   ``--host-image-paths``: more host directories, read-only
    /etc masks   what in ``/etc`` "other" may not read (``shadow``,
                 ``gshadow``, ``ssl/private``, ...) covered: /dev/null over a
                 file, an empty read-only tmpfs over a directory
    skeleton     empty ``/root``, ``/home``, ``/var`` with ``tmp``, ``log``,
                 ``cache``; ``/tmp``, ``/run``, ``/var/tmp`` get a private
                 tmpfs each; mount points for /proc, /sys, /dev

So ``/root``, ``/home``, ``/srv``, ``/opt``, ``/var/lib``, the service's own
checkout and state dir are simply not there, whatever their modes and
whatever capabilities the container has.

``HostView`` holds what is fixed at service start (which directories, which
links); ``EtcMasks``, one per process, the masks of ``/etc``.  They are
computed once, by a walk of ``/etc`` (about 1,200 entries here, a few ms),
and again when an inotify(7) watch on its directories reports a change: a
non-blocking read of that watch on each launch (one syscall when nothing
changed) tells whether to, so a file chmod'ed to 0600 is masked from the
next launch on.  The rule,
documented in docs/security.md: an entry of ``/etc`` is shown only if the
world may read it (``S_IROTH``; for a directory ``S_IROTH`` and ``S_IXOTH``).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime import libc
from runtime.images.builtin import HOST_TMPFS
from runtime.spec import under

log = logging.getLogger("mydocker.images.hostview")

#: The host directories a program needs, bound read-only where they are
#: directories; where one is a symlink (usr-merge), the link is recreated.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
#: Empty directories of the view's own tmpfs root, with their modes.
SKELETON: dict[str, int] = {
    "/proc": 0o555,
    "/sys": 0o555,
    "/dev": 0o755,
    "/tmp": 0o1777,
    "/run": 0o755,
    "/var": 0o755,
    "/var/tmp": 0o1777,
    "/var/log": 0o755,
    "/var/cache": 0o755,
    "/root": 0o700,
    "/home": 0o755,
}
#: The size of the view's root tmpfs: only directories (mount points) are made in it.
ROOT_SIZE = 1 << 20
ETC = "/etc"
#: Paths an operator may not add: the container's own kernel filesystems.
_NOT_ADDABLE = ("/proc", "/sys", "/dev")
#: inotify(7) events that can change what /etc shows.
_ETC_EVENTS = (
    0x4  # IN_ATTRIB: a chmod
    | 0x40  # IN_MOVED_FROM
    | 0x80  # IN_MOVED_TO
    | 0x100  # IN_CREATE
    | 0x200  # IN_DELETE
    | 0x400  # IN_DELETE_SELF
    | 0x800  # IN_MOVE_SELF
)


class HostPathError(ValueError):
    """An operator path that cannot be added to the view (``--host-image-paths``)."""


@dataclass(frozen=True)
class Layout:
    """What the view binds and links, fixed at service start."""

    #: Host directories bound read-only at the same path, in mount order.
    binds: tuple[str, ...]
    #: (path, target) of the usr-merge symlinks recreated in the view.
    links: tuple[tuple[str, str], ...]


def layout(extra: Sequence[str] = ()) -> Layout:
    """The system directories this host has, then the operator's ``extra`` ones."""
    binds: list[str] = []
    links: list[tuple[str, str]] = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            links.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            binds.append(path)
    for path in extra:
        binds.append(check_extra(path, binds))
    return Layout(tuple(binds), tuple(links))


def check_extra(path: str, binds: Sequence[str]) -> str:
    """``path`` as the view binds it, or HostPathError saying why it cannot."""
    if not os.path.isabs(path):
        raise HostPathError(f"{path}: not an absolute path")
    normal = os.path.normpath(path)
    if normal == "/":
        raise HostPathError("/: the whole host is what the view keeps out")
    if not os.path.isdir(normal):
        raise HostPathError(f"{path}: not a directory")
    if os.path.realpath(normal) != normal:
        raise HostPathError(f"{path}: has a symlink in it; give {os.path.realpath(normal)}")
    if under(normal, _NOT_ADDABLE):
        raise HostPathError(f"{path}: containers get their own {normal.split('/')[1]}")
    if under(normal, list(HOST_TMPFS)):
        raise HostPathError(f"{path}: containers get a private tmpfs there")
    if under(normal, list(binds)):
        raise HostPathError(f"{path}: already in the host image")
    return normal


def etc_masks(root: str = ETC, watch: Callable[[str], None] | None = None) -> tuple[str, ...]:
    """The entries under ``root`` other may not read.

    A directory other may not list or enter is masked whole and not walked.
    Symlinks are left alone: one into /etc names an entry that is checked
    itself, one out of it names a path the view does not have.  ``watch`` is
    called with each directory before it is read, so a change made after the
    read is reported by the watch."""
    masked: list[str] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        if watch is not None:
            watch(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # gone meanwhile: the watch reports it
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                continue
            if stat.S_ISDIR(mode):
                if mode & (stat.S_IROTH | stat.S_IXOTH) != stat.S_IROTH | stat.S_IXOTH:
                    masked.append(entry.path)
                else:
                    pending.append(entry.path)
            elif not mode & stat.S_IROTH:
                masked.append(entry.path)
    return tuple(sorted(masked))


class EtcMasks:
    """The current masks of one ``/etc``, walked again when it changes.

    Thread-safe: the API plans launches from several worker threads.  Without
    inotify (``fs.inotify.max_user_instances`` or ``max_user_watches`` used
    up) it walks again at most every ``poll_seconds`` instead, and says so."""

    def __init__(self, root: str = ETC, poll_seconds: float = 1.0) -> None:
        self._root = root
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._watches: list[int] = []
        try:
            self._inotify = libc.inotify_init1(libc.IN_NONBLOCK | libc.IN_CLOEXEC)
        except OSError as err:
            log.warning("cannot watch %s (%s): walking it every %ss", root, err, poll_seconds)
            self._inotify = -1
        self._walked_at = time.monotonic()
        self._masks = self._rescan()

    def current(self) -> tuple[str, ...]:
        """The masks as of now: walked again when ``root`` changed since the last call."""
        with self._lock:
            if self._inotify >= 0:
                stale = self._changed()
            else:
                stale = time.monotonic() - self._walked_at >= self._poll_seconds
            if stale:
                self._masks = self._rescan()
            return self._masks

    def close(self) -> None:
        with self._lock:
            if self._inotify >= 0:
                os.close(self._inotify)
                self._inotify = -1

    def _changed(self) -> bool:
        changed = False
        while True:
            try:
                data = os.read(self._inotify, 65536)
            except BlockingIOError:
                return changed
            if not data:
                return changed
            changed = True

    def _rescan(self) -> tuple[str, ...]:
        self._walked_at = time.monotonic()
        if self._inotify < 0:
            return etc_masks(self._root)
        for wd in self._watches:
            try:
                libc.inotify_rm_watch(self._inotify, wd)
            except OSError:
                pass  # its directory is gone (IN_IGNORED came already)
        self._watches = []
        self._changed()  # the removals' IN_IGNORED events are not a change
        return etc_masks(self._root, watch=self._watch)

    def _watch(self, directory: str) -> None:
        if self._inotify < 0:
            return
        try:
            self._watches.append(libc.inotify_add_watch(self._inotify, directory, _ETC_EVENTS))
        except OSError as err:
            log.warning(
                "cannot watch %s (%s): walking /etc every %ss", directory, err, self._poll_seconds
            )
            os.close(self._inotify)
            self._inotify = -1
            self._watches = []


_shared: dict[str, EtcMasks] = {}
_shared_lock = threading.Lock()


def shared_masks(root: str = ETC) -> EtcMasks:
    """The process's one ``EtcMasks`` of ``root``: the masks are the host's,
    not a runtime's, and each inotify instance counts against a per-user cap
    (``fs.inotify.max_user_instances``, 128 by default; inotify(7))."""
    with _shared_lock:
        masks = _shared.get(root)
        if masks is None:
            masks = _shared[root] = EtcMasks(root)
        return masks


class HostView:
    """The host image's layout and the current masks of its ``/etc``."""

    def __init__(self, extra: Sequence[str] = (), masks: EtcMasks | None = None) -> None:
        self.layout = layout(extra)
        self._masks = masks if masks is not None else shared_masks()

    @property
    def binds(self) -> tuple[str, ...]:
        return self.layout.binds

    @property
    def links(self) -> tuple[tuple[str, str], ...]:
        return self.layout.links

    def masks(self) -> tuple[str, ...]:
        return self._masks.current()

    def shows(self, path: str) -> bool:
        """Whether ``path`` lies in a read-only host directory of the view."""
        return under(path, list(self.binds) + [link for link, _ in self.links])

    def contents(self) -> list[str]:
        """What the view holds, for the image's listing."""
        shown = [f"{path} (read-only)" for path in self.binds]
        shown += [f"{path} -> {target}" for path, target in self.links]
        return shown + [f"{path} (empty)" for path in SKELETON if path not in ("/proc", "/sys")]
