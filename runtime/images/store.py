"""The image store: ``<state_dir>/images/<name>/{rootfs/,image.json}``.

An image is a directory tree that containers use as their overlay's lower
layer and never write.  Every change to the store is a rename(2) of a whole
directory, so a reader sees an image completely or not at all:

    import:  .import-XXXX/{archive, rootfs/} --extract--> .import-XXXX/rootfs,
             image.json --rename--> <name>/
    delete:  <name>/ --rename--> .trash-XXXX/ --rmtree (and its shifted copies)
    shift:   .userns-<H>/.shift-XXXX/ --copy, ids + H--> .userns-<H>/<name>/
    start:   leftover .import-*, .trash-*, .shift-*, and the .build-* and .load-*
             of runtime/images/building.py and runtime/imaging.py (a crash
             mid-way) are removed

A shifted copy serves containers in a user namespace whose root is host uid
H: their overlay needs a lower layer whose files belong to ids mapped in
that namespace (copy-up chowns as the namespace's root), so every uid and gid
below the namespace's size is moved up by H, as Docker's userns-remap does.
It is made on first use and kept until the image is deleted.

``normalize_name`` turns Docker references into store names
(``docker.io/library/busybox:latest`` -> ``busybox``).

Pulled images (layers shared between images, tags, digests) live beside
them in ``blobs/``, ``layers/`` and ``catalog/`` (``layered.LayeredImages``,
``self.layered``); ``get`` and ``list`` answer for every kind alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.errors import Conflict, InvalidArgument, NotFound, TooLarge
from runtime.images import builtin
from runtime.images.importer import extract
from runtime.images.layered import LayeredImage, LayeredImages
from runtime.images.oci import ImageConfig, digest_hex
from runtime.images.shift import copy_shifted
from runtime.timeutil import now_rfc3339

log = logging.getLogger("mydocker.images")

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DEFAULT_MAX_BYTES = 4 << 30
_REGISTRY_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
_PROGRESS_STEP = 64 << 20


def normalize_name(ref: str) -> str:
    """The store name for an imported image's reference; ``ValueError`` if it has none.

    Docker's defaults are dropped: the registry ``docker.io``, the
    ``library/`` namespace and the ``:latest`` tag.  What remains must be a
    plain name (lowercase letters, digits, ``_ . -``) with an optional
    ``:tag`` (``mybox:v1``, stored as its own image).
    """
    name = ref
    for prefix in _REGISTRY_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = name.removeprefix("library/").removesuffix(":latest")
    base, sep, tag = name.partition(":")
    if not _NAME.match(base) or (sep and not _TAG.fullmatch(tag)):
        raise ValueError(
            f"{ref!r} is not an image name: lowercase letters, digits, '_', '.', '-' "
            "(at most 128, starting with a letter or digit), then an optional :tag; "
            "namespaces other than library/ are for pulled images"
        )
    return name


@dataclass(frozen=True)
class Image:
    """An image as the rest of the runtime sees it, whatever its kind.

    ``kind`` is ``builtin``, ``imported`` (a tarball, one rootfs dir) or
    ``pulled`` (layers from a registry, loaded from a ``docker save``, or
    made by Docker's import or commit: ``building.py``).
    ``lowers`` are the overlay's lower dirs, top first (empty for ``host``,
    whose root is a view of the host).  ``config`` is the image config of
    a pulled image (Entrypoint, Cmd, Env, ...), ``None`` for the others.
    """

    name: str
    builtin: bool
    #: The rootfs directory of a one-dir image; ``None`` for ``host`` and pulled images.
    rootfs: str | None
    created_at: str | None = None
    size_bytes: int | None = None
    files: int | None = None
    #: What the image shows, for those that are views of the host (``host``).
    contents: tuple[str, ...] | None = None
    kind: str = "imported"
    id: str | None = None
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()
    lowers: tuple[str, ...] = ()
    config: ImageConfig | None = None

    @property
    def is_host(self) -> bool:
        return self.name == builtin.HOST and self.builtin


#: Directories of the store that are not images (imports may not take these names).
RESERVED = ("blobs", "layers", "catalog")


def _layered(found: LayeredImage) -> Image:
    entry = found.entry
    return Image(
        name=found.tags[0] if found.tags else digest_hex(entry.id)[:12],
        builtin=False,
        rootfs=None,
        created_at=entry.created_at,
        size_bytes=entry.size_bytes,
        kind="pulled",
        id=entry.id,
        tags=found.tags,
        digests=found.digests,
        diff_ids=entry.diff_ids,
        lowers=tuple(reversed(found.layers)),
        config=found.config,
    )


class ImageStore:
    def __init__(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        # 0700: images may hold set-user-ID files that host users must not reach.
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._shift_lock = threading.Lock()
        self.layered = LayeredImages(root)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    # -- start-up -------------------------------------------------------
    def prepare(self) -> None:
        """Clear what a crash left half-done; build ``busybox`` if it is missing."""
        for entry in os.listdir(self.root):
            if entry.startswith((".import-", ".trash-", ".build-", ".load-")):
                log.info("removing %s, left over from an interrupted import or delete", entry)
                shutil.rmtree(self.path(entry), ignore_errors=True)
            elif entry.startswith(".userns-"):
                for parent in (self.path(entry), os.path.join(self.path(entry), "layers")):
                    for sub in os.listdir(parent) if os.path.isdir(parent) else ():
                        if sub.startswith(".shift-"):
                            shutil.rmtree(os.path.join(parent, sub), ignore_errors=True)
        if not os.path.exists(os.path.join(self.path(builtin.BUSYBOX), "image.json")):
            self._build_busybox()

    def _build_busybox(self) -> None:
        if not os.path.exists(builtin.BUSYBOX_BINARY):
            log.warning(
                "no %s (Debian package busybox-static): the busybox image is unavailable",
                builtin.BUSYBOX_BINARY,
            )
            return
        staging = tempfile.mkdtemp(prefix=".import-", dir=self.root)
        try:
            rootfs = os.path.join(staging, "rootfs")
            os.mkdir(rootfs, 0o755)
            builtin.build_busybox(rootfs)
            files, size = _measure(rootfs)
            self._commit(staging, builtin.BUSYBOX, files, size, builtin=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("built the busybox image from %s", builtin.BUSYBOX_BINARY)

    # -- queries --------------------------------------------------------
    def get(self, ref: str) -> Image:
        """Built-in and imported images by name first, then pulled ones by id,
        digest or tag; ``NotFound`` naming the reference otherwise."""
        try:
            name = normalize_name(ref)
        except ValueError:
            name = None
        if name == builtin.HOST:
            return Image(name=builtin.HOST, builtin=True, rootfs=None, kind="builtin")
        if name is not None and name not in RESERVED:
            found = self._flat(name)
            if found is not None:
                return found
        layered = self.layered.find(ref)
        if layered is not None:
            return _layered(layered)
        raise NotFound("image", name or ref)

    def _flat(self, name: str) -> Image | None:
        try:
            with open(os.path.join(self.path(name), "image.json")) as f:
                meta = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None
        rootfs = os.path.join(self.path(name), "rootfs")
        is_builtin = bool(meta.get("builtin", False))
        return Image(
            name=name,
            builtin=is_builtin,
            rootfs=rootfs,
            created_at=meta.get("created_at"),
            size_bytes=meta.get("size_bytes"),
            files=meta.get("files"),
            kind="builtin" if is_builtin else "imported",
            tags=(name if ":" in name else f"{name}:latest",),
            lowers=(rootfs,),
        )

    def list(self) -> list[Image]:
        """``host`` first, then the built-in and imported images by name, then pulled ones."""
        images = [self.get(builtin.HOST)]
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith(".") or entry == builtin.HOST or entry in RESERVED:
                continue
            found = self._flat(entry)
            if found is not None:
                images.append(found)
        images += sorted((_layered(f) for f in self.layered.all()), key=lambda i: i.name)
        return images

    # -- changes --------------------------------------------------------
    def delete(self, name: str) -> None:
        """Remove an image; the caller has checked that nothing uses it."""
        trash = tempfile.mkdtemp(prefix=".trash-", dir=self.root)
        try:
            os.rename(self.path(name), os.path.join(trash, name))
        except FileNotFoundError:
            os.rmdir(trash)
            raise NotFound("image", name) from None
        for entry in os.listdir(self.root):
            if entry.startswith(".userns-") and os.path.isdir(os.path.join(self.root, entry, name)):
                os.rename(os.path.join(self.root, entry, name), os.path.join(trash, entry))
        shutil.rmtree(trash)

    def shifted_rootfs(self, name: str, host_id: int, size: int) -> str:
        """The rootfs of ``name`` with ids 0..size-1 moved to host_id.., made once."""
        base = os.path.join(self.root, f".userns-{host_id}")
        done = os.path.join(base, name, "rootfs")
        with self._shift_lock:
            if os.path.isdir(done):
                return done
            source = self.get(name).rootfs
            assert source is not None
            os.makedirs(base, mode=0o700, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".shift-", dir=base)
            try:
                log.info("image %s: making a copy owned by user namespace ids %d..", name, host_id)
                copy_shifted(source, os.path.join(staging, "rootfs"), host_id, size)
                os.rename(staging, os.path.join(base, name))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return done

    def shifted_lowers(self, image: Image, host_id: int, size: int) -> tuple[str, ...]:
        """``image.lowers`` owned by user namespace ids host_id.. (made once)."""
        if image.kind != "pulled":
            return (self.shifted_rootfs(image.name, host_id, size),)
        found = self.layered.find(image.id or "")
        if found is None:
            raise NotFound("image", image.name)
        return tuple(reversed(self.layered.shifted_layers(found, host_id, size)))

    def begin_import(self, ref: str) -> ImportJob:
        try:
            name = normalize_name(ref)
        except ValueError as err:
            raise InvalidArgument("name", str(err)) from None
        if name in builtin.NAMES or name in RESERVED or os.path.exists(self.path(name)):
            raise Conflict(f"an image named {name!r} exists already")
        return ImportJob(self, name)

    def import_archive(self, ref: str, chunks: Iterable[bytes]) -> Image:
        """Import from an iterable of byte chunks (a file opened ``rb`` works)."""
        job = self.begin_import(ref)
        try:
            for chunk in chunks:
                job.write(chunk)
        except BaseException:
            job.abort()
            raise
        return job.finish()

    def _commit(self, staging: str, name: str, files: int, size: int, builtin: bool) -> None:
        meta = {
            "name": name,
            "builtin": builtin,
            "created_at": now_rfc3339(),
            "size_bytes": size,
            "files": files,
        }
        with open(os.path.join(staging, "image.json"), "w") as f:
            json.dump(meta, f)
        try:
            os.rename(staging, self.path(name))
        except OSError as err:  # ENOTEMPTY/EEXIST: another import of the same name won
            raise Conflict(f"an image named {name!r} exists already") from err


class ImportJob:
    """One import: the body goes to ``archive`` as it arrives, then is extracted.

    Writing the whole archive to disk first keeps memory flat whatever the
    size and lets extraction read it at disk speed, in one thread; the cost
    is disk space for the archive while the import runs.
    """

    def __init__(self, store: ImageStore, name: str) -> None:
        self.store = store
        self.name = name
        self.staging = tempfile.mkdtemp(prefix=".import-", dir=store.root)
        self.archive_path = os.path.join(self.staging, "archive")
        self._archive = open(self.archive_path, "wb")
        self.received = 0
        self._next_report = _PROGRESS_STEP
        #: Called with the image once it is in the store (the runtime's ``import`` event).
        self.on_finish: Callable[[Image], None] | None = None

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.store.max_bytes:
            self.abort()
            raise TooLarge(f"the archive is larger than the cap of {self.store.max_bytes} bytes")
        self._archive.write(chunk)
        if self.received >= self._next_report:
            self._next_report += _PROGRESS_STEP
            log.info("import %s: received %d MiB", self.name, self.received >> 20)

    def finish(self) -> Image:
        """Extract and publish; on any error nothing of the import remains."""
        try:
            self._archive.close()
            log.info("import %s: extracting %d bytes", self.name, self.received)
            rootfs = os.path.join(self.staging, "rootfs")
            os.mkdir(rootfs, 0o755)
            with open(self.archive_path, "rb") as archive:
                stats = extract(
                    archive, rootfs, max_bytes=self.store.max_bytes, progress=self._progress
                )
            os.unlink(self.archive_path)
            self.store._commit(self.staging, self.name, stats.files, stats.size_bytes, False)
        except BaseException:
            self.abort()
            raise
        log.info("import %s: %d files, %d bytes", self.name, stats.files, stats.size_bytes)
        image = self.store.get(self.name)
        if self.on_finish is not None:
            self.on_finish(image)
        return image

    def _progress(self, files: int, size: int) -> None:
        log.info("import %s: extracted %d MiB in %d files", self.name, size >> 20, files)

    def abort(self) -> None:
        self._archive.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def _measure(root: str) -> tuple[int, int]:
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size
