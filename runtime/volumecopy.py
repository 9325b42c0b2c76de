"""A new volume filled with what its image has at the mount's target: ``copy_up``.

Docker copies the image's directory at a volume's target into a new volume
(``docker run -v /path``, an image's ``Volumes``).  A pulled image is a stack
of layers (``lowers``, top first, as the overlay stacks them), so the copy is
of the merged view: the layers are laid down bottom first, and the overlayfs
marks each layer carries (Documentation/filesystems/overlayfs.rst, "whiteouts
and opaque directories"; runtime/images/importer.py makes them) act as the
overlay would:

    whiteout      a character device 0/0: the name is gone from the layers below
    opaque dir    ``trusted.overlay.opaque=y``: its contents below are hidden
    non-dir       a file or link over a directory hides the directory below

Owners, modes and symlinks are kept.  A path through a symlink is never
followed: in an image it may point anywhere on the host, so a target reached
through one (in the topmost layer that has it) gives an empty volume.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence

from runtime.images.importer import OPAQUE_XATTR


def copy_up(lowers: Sequence[str], target: str, data: str) -> None:
    """The merged image's directory at ``target`` copied into ``data`` (empty, made)."""
    parts = [p for p in target.strip("/").split("/") if p]
    for lower in reversed(lowers):
        source, hidden = _locate(lower, parts)
        if hidden:
            _clear(data)  # this layer hides what the layers below gave
        if source is not None:
            _merge(source, data)


def _locate(lower: str, parts: Sequence[str]) -> tuple[str | None, bool]:
    """``target`` in one layer: (its directory there or None, whether this
    layer hides the target's contents from the layers below)."""
    path, hidden = lower, False
    for part in parts:
        path = os.path.join(path, part)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None, hidden  # not in this layer (hidden if under an opaque dir)
        if not stat.S_ISDIR(info.st_mode):
            return None, True  # a whiteout, a file or a link over the path
        hidden = hidden or _opaque(path)
    return path, hidden


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _clear(path: str) -> None:
    for name in os.listdir(path):
        _remove(os.path.join(path, name))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _merge(source: str, dest: str) -> None:
    """One layer's directory laid over ``dest``: its whiteouts remove, its
    opaque directories replace, everything else is copied over."""
    info = os.lstat(source)
    for entry in os.scandir(source):
        there = entry.path
        here = os.path.join(dest, entry.name)
        mine = os.lstat(there)
        if _whiteout(mine):
            _remove(here)
        elif stat.S_ISDIR(mine.st_mode):
            if _opaque(there) or (os.path.lexists(here) and not os.path.isdir(here)):
                _remove(here)
            if not os.path.lexists(here) or os.path.islink(here):
                _remove(here)
                os.mkdir(here)
            _merge(there, here)
        elif stat.S_ISREG(mine.st_mode) or stat.S_ISLNK(mine.st_mode):
            _remove(here)
            shutil.copy2(there, here, follow_symlinks=False)
            os.lchown(here, mine.st_uid, mine.st_gid)
        # other nodes (fifos, sockets, devices) are not copied into a volume
    os.lchown(dest, info.st_uid, info.st_gid)
    os.chmod(dest, stat.S_IMODE(info.st_mode))
