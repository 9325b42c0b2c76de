"""The content-addressed blob store: ``<state>/images/blobs/sha256/<hex>``.

A blob (a manifest, a config, a compressed layer) is stored under its digest,
so it is fetched once however many images share it, and its name says what
its bytes must hash to.

    blobs/sha256/<hex>        complete, verified blobs (read-only, 0444)
    blobs/ingest/<hex>.XXXX   downloads in progress (gone after success or failure)

``BlobStore.fetch(descriptor, source)`` streams ``source()`` (an iterator of
chunks, e.g. ``RegistryClient.blob``) into an ingest file while it hashes and
counts; only when the size and the sha256 are those of the descriptor is the
file renamed into place (rename(2) is atomic, so a blob path either does not
exist or holds the whole verified blob).  A mismatch raises
``DigestMismatch`` and deletes the ingest file; more bytes than the
descriptor's size stop the download there.  Concurrent fetches of one digest
share one download (``once.Once``).

``gc(keep)`` is the sweep of a mark-and-sweep: the caller marks (the digests
its images' manifests name) and every other blob goes, along with ingest
leftovers of a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from runtime.errors import DigestMismatch, NotFound
from runtime.images.oci import Descriptor, check_digest, digest_hex
from runtime.images.once import Once

log = logging.getLogger("mydocker.images")

ChunkSource = Callable[[], contextlib.AbstractContextManager[Iterable[bytes]]]


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._dir = root / "sha256"
        self._ingest = root / "ingest"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        self._once: Once[Path] = Once()

    def path(self, digest: str) -> Path:
        return self._dir / digest_hex(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes in chunks; ``NotFound`` if it is not stored."""
        try:
            handle = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound("blob", digest) from None
        with handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound("blob", digest) from None

    def cached(self, digest: str) -> bytes | None:
        """A stored blob's bytes, ``None`` if it is not here."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None

    def fetch(self, descriptor: Descriptor, source: ChunkSource) -> Path:
        """The stored blob's path, downloading and verifying it first if needed."""
        check_digest(descriptor.digest)
        final = self.path(descriptor.digest)
        if final.is_file():
            return final

        def download() -> Path:
            if final.is_file():  # another thread finished it between our checks
                return final
            self._ingest_from(descriptor, source, final)
            return final

        return self._once.run(descriptor.digest, download)

    def put(self, descriptor: Descriptor, data: bytes) -> Path:
        """Store bytes already in memory (a manifest, a config) under their digest."""
        return self.fetch(descriptor, lambda: contextlib.nullcontext([data]))

    def _ingest_from(self, descriptor: Descriptor, source: ChunkSource, final: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=final.name + ".", dir=self._ingest)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, source() as chunks:
                for chunk in chunks:
                    size += len(chunk)
                    if size > descriptor.size:
                        raise DigestMismatch(
                            f"blob {descriptor.digest}: more than the {descriptor.size} "
                            "bytes its descriptor announces"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size != descriptor.size:
                raise DigestMismatch(
                    f"blob {descriptor.digest}: {size} bytes received, "
                    f"its descriptor announces {descriptor.size}"
                )
            actual = "sha256:" + digest.hexdigest()
            if actual != descriptor.digest:
                raise DigestMismatch(
                    f"blob {descriptor.digest}: the content received hashes to {actual}"
                )
            os.chmod(tmp, 0o444)
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        log.info("blob %s stored (%d bytes)", descriptor.digest, size)

    def digests(self) -> set[str]:
        return {"sha256:" + p.name for p in self._dir.iterdir()}

    def gc(self, keep: Iterable[str]) -> list[str]:
        """Delete every blob not in ``keep`` and ingest leftovers; return the deleted digests.

        Digests being fetched right now are kept whatever ``keep`` says, and so
        are their ingest files.
        """
        wanted = {check_digest(d) for d in keep}
        deleted = []
        for digest in sorted(self.digests() - wanted):
            if self._once.busy(digest):
                continue
            with contextlib.suppress(FileNotFoundError):
                self.path(digest).unlink()
                deleted.append(digest)
        for leftover in self._ingest.iterdir():
            if not self._once.busy("sha256:" + leftover.name.split(".", 1)[0]):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        if deleted:
            log.info("blob gc: deleted %d blobs", len(deleted))
        return deleted
