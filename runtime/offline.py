"""``docker cp`` of a container that has no process showing its root: a created
one (its child builds its root only once started, runtime/launcher/spawn.py)
or an exited one.  Docker mounts such a container's root and volumes on the
host for the copy; we reach the same files where they are on disk.

    user_mount   the bind or volume mount (the deepest) whose target holds a
                 path, and the path inside it
    stat, read   of a path: on a mount, from its source; elsewhere from the
                 layers (runtime/changes.py ``Layer``, image under writable layer)
    extract      a tar into a directory: on a mount, into its source; elsewhere
                 into the writable layer (overlayfs' upper dir), its
                 directories made there first with the owner and mode they have
                 in the image, as overlayfs copies a directory up (overlayfs(5):
                 a directory in the upper layer merges with the lower ones)

A mount's source is opened as the ``Root`` (runtime/archive.py), so a path
inside it resolves with ``RESOLVE_IN_ROOT`` and never leaves it: an absolute
link in a volume points into the volume here (the container would see its
own root), which can only refuse more than Docker, never reach the host.

Left out: a tar member that replaces a deleted (whited-out) directory of the
image merges with the image's entries again, where the kernel would make it
opaque; ``noOverwriteDirNonDir`` checks the writable layer only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from stat import S_IMODE, S_ISDIR
from typing import IO

from runtime.archive import PathStat, Root, base_name, clean, extract_in
from runtime.changes import Layer
from runtime.errors import InvalidArgument, InvalidState
from runtime.records import ContainerRecord
from runtime.spec import LAYER_RW, Mount

_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def user_mount(record: ContainerRecord, path: str) -> tuple[Mount, str] | None:
    """The bind or volume mount whose target is or holds ``path`` (the
    deepest such), and ``path`` inside it (``/`` for the target itself)."""
    cleaned = clean(path).removesuffix("/.")
    found: tuple[Mount, str] | None = None
    for mount in record.spec.mounts:
        if mount.type not in ("bind", "volume") or mount.source is None:
            continue
        target = mount.target.rstrip("/")
        if cleaned == target or cleaned.startswith(target + "/"):
            if found is None or len(target) > len(found[0].target.rstrip("/")):
                found = (mount, "/" + cleaned[len(target) :].lstrip("/"))
    if found is None:
        return None
    mount, inside = found
    if path.endswith("/.") and inside != "/":
        inside += "/."
    elif path.endswith("/"):
        inside += "/" if inside != "/" else ""
    return mount, inside


def _root(record: ContainerRecord, directory: str) -> Root:
    try:
        fd = os.open(directory, _PATH_DIR)
    except FileNotFoundError as err:
        raise InvalidState(f"container {record.id}: {directory} is gone") from err
    return Root(fd, record.id, record.spec.security.userns_host_id)


def stat(record: ContainerRecord, path: str) -> PathStat:
    located = user_mount(record, path)
    if located is None:
        return Layer.of(record).stat(path)
    mount, inside = located
    assert mount.source is not None
    with _root(record, mount.source) as root:
        # A mount's own target is named as the container sees it.
        return replace(root.stat(inside), name=base_name(path))


def read(record: ContainerRecord, path: str) -> tuple[PathStat, Iterator[bytes]]:
    located = user_mount(record, path)
    if located is None:
        return Layer.of(record).read(path)
    mount, inside = located
    assert mount.source is not None
    root = _root(record, mount.source)
    try:
        return root.read(inside, arcname=base_name(path))
    except BaseException:
        root.close()
        raise


def extract(
    record: ContainerRecord,
    path: str,
    fileobj: IO[bytes],
    no_overwrite_dir_non_dir: bool = False,
    copy_uid_gid: bool = False,
) -> int:
    located = user_mount(record, path)
    if located is not None:
        mount, inside = located
        if mount.read_only:
            raise InvalidState(f"container {record.id}: {mount.target} is mounted read-only")
        assert mount.source is not None
        directory = mount.source
    else:
        directory, inside = _upper_directory(record, path)
    root = _root(record, directory)
    return extract_in(root, inside, fileobj, no_overwrite_dir_non_dir, copy_uid_gid)


def _upper_directory(record: ContainerRecord, path: str) -> tuple[str, str]:
    """The writable layer, with directory ``path`` (links resolved in the
    merged root) made in it; (the layer, the path inside it)."""
    layer = Layer.of(record)  # the host image: 409
    plan = record.spec.rootfs
    assert plan is not None and plan.layer is not None
    if layer.upper is None:
        # Docker: "container rootfs is marked read-only".
        raise InvalidState(f"container {record.id} has a read-only root")
    if not S_ISDIR(layer.stat(path).mode):
        raise InvalidArgument("path", "extraction point is not a directory")
    parts = layer.resolve(path)
    upper = os.path.join(plan.layer, LAYER_RW, "upper")
    if not os.path.isdir(upper):
        # As the child makes it (runtime/rootfs.py): the merged root's owner and mode.
        os.makedirs(upper, 0o755, exist_ok=True)
        top = os.stat(layer.lowers[0])
        os.chown(upper, top.st_uid, top.st_gid)
        os.chmod(upper, top.st_mode & 0o7777)
    for depth in range(1, len(parts) + 1):
        here = os.path.join(upper, *parts[:depth])
        if os.path.lexists(here):
            continue
        seen = layer.stat("/" + "/".join(parts[:depth]))
        os.mkdir(here, S_IMODE(seen.mode))
        _copy_owner(layer, parts[:depth], here)
    return upper, "/" + "/".join(parts)


def _copy_owner(layer: Layer, parts: list[str], here: str) -> None:
    """The owner the directory has in the image's layers, on its copy."""
    for lower in layer.lowers:
        try:
            st = os.stat(os.path.join(lower, *parts), follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        os.chown(here, st.st_uid, st.st_gid)
        os.chmod(here, S_IMODE(st.st_mode))
        return
