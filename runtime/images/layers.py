"""Unpacked image layers: ``<state>/images/layers/sha256/<diff id hex>``.

A layer is unpacked once per *diff id* (the sha256 of its uncompressed tar,
config.md's ``rootfs.diff_ids``), so images that share a layer share its
directory, whatever compression each registry served it with.

    layers/sha256/<hex>          an unpacked layer: an overlayfs lowerdir
    layers/ingest/<hex>.XXXX     an unpack in progress (renamed when complete)

``LayerStore.unpack(blob, media_type, diff_id)`` decompresses the blob
(gzip, zstd when the ``zstandard`` module is installed, or none), hashes the
tar as it streams through ``importer.extract`` with ``whiteouts=True`` (the
import's safe-extraction rules, plus OCI whiteouts turned into overlayfs
ones), checks the hash against the diff id, and renames the directory into
place.  Anything wrong deletes the half-made directory.

``lowerdir(diff_ids)`` is the overlayfs ``lowerdir=`` option for an image:
its layers top first (overlayfs.rst: "the specified lower directories will be
stacked beginning from the rightmost one").
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from runtime.errors import DigestMismatch, InvalidArchive, InvalidArgument, NotFound
from runtime.images.importer import extract
from runtime.images.oci import LAYER_COMPRESSION, check_digest, digest_hex
from runtime.images.once import Once

log = logging.getLogger("mydocker.images")

# The uncompressed size allowed per layer (the importer's cap on the members'
# sizes, as for an uploaded image).
DEFAULT_MAX_LAYER_BYTES = 16 << 30


class _HashingReader:
    """A read-only file object that hashes what passes through it."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> None:
        # tarfile stops at the end-of-archive blocks; the diff id covers the
        # whole stream, padding included.
        while self.read(1 << 20):
            pass


def _decompressor(blob: IO[bytes], compression: str) -> Any:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=blob, mode="rb")
    if compression == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise InvalidArgument(
                "layers", "zstd-compressed layers need the zstandard module, not installed"
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(blob)
    return blob


class LayerStore:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_LAYER_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._dir = root / "sha256"
        self._ingest = root / "ingest"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._once: Once[Path] = Once()

    def path(self, diff_id: str) -> Path:
        return self._dir / digest_hex(diff_id)

    def has(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def lowerdir(self, diff_ids: Iterable[str]) -> str:
        """overlayfs's ``lowerdir=`` for layers given bottom first (as in a config)."""
        paths = []
        for diff_id in diff_ids:
            path = self.path(diff_id)
            if not path.is_dir():
                raise NotFound("layer", diff_id)
            paths.append(str(path))
        return ":".join(reversed(paths))

    def unpack(self, blob: Path, media_type: str, diff_id: str) -> Path:
        """The layer's directory, unpacking ``blob`` first if no image did yet."""
        check_digest(diff_id, "rootfs.diff_ids")
        if media_type not in LAYER_COMPRESSION:
            raise InvalidArgument("layers", f"unsupported layer media type {media_type!r}")
        final = self.path(diff_id)
        if final.is_dir():
            return final

        def job() -> Path:
            if final.is_dir():
                return final
            self._unpack(blob, LAYER_COMPRESSION[media_type], diff_id, final)
            return final

        return self._once.run(diff_id, job)

    def _unpack(self, blob: Path, compression: str, diff_id: str, final: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=self._ingest))
        try:
            tree = work / "tree"
            tree.mkdir()
            with blob.open("rb") as raw:
                stream = _HashingReader(_decompressor(raw, compression))
                try:
                    stats = extract(
                        stream,  # type: ignore[arg-type]
                        str(tree),
                        max_bytes=self.max_bytes,
                        whiteouts=True,
                        compressed=False,
                    )
                    stream.drain()
                except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                    raise InvalidArchive(f"layer {diff_id}: damaged: {err}") from err
                except Exception as err:
                    if type(err).__name__ == "ZstdError":  # zstandard's, when installed
                        raise InvalidArchive(f"layer {diff_id}: damaged: {err}") from err
                    raise
            actual = "sha256:" + stream.sha256.hexdigest()
            if actual != diff_id:
                raise DigestMismatch(
                    f"layer {diff_id}: its uncompressed content hashes to {actual}"
                )
            os.rename(tree, final)
            log.info(
                "layer %s unpacked (%d files, %d bytes)", diff_id, stats.files, stats.size_bytes
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def diff_ids(self) -> set[str]:
        return {"sha256:" + p.name for p in self._dir.iterdir()}

    def gc(self, keep: Iterable[str]) -> list[str]:
        """Delete every layer not in ``keep`` (and unpack leftovers); the deleted diff ids."""
        wanted = {check_digest(d) for d in keep}
        deleted = []
        for diff_id in sorted(self.diff_ids() - wanted):
            if self._once.busy(diff_id):
                continue
            shutil.rmtree(self.path(diff_id), ignore_errors=True)
            deleted.append(diff_id)
        for leftover in self._ingest.iterdir():
            if not self._once.busy("sha256:" + leftover.name.split(".", 1)[0]):
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(leftover, ignore_errors=True)
        return deleted
