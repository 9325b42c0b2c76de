"""Pulled images by reference: ``<state>/images/catalog/``.

    images/<hex>.json   one per image, named by its id (the config blob's digest,
                        as Docker names images): the manifest digests it was
                        pulled as, its repo digests, its layers' diff ids
    tags.json           {"registry/repository:tag": image id}

A pulled image's files are blobs (``blobs.py``: manifests, the config,
compressed layers) and unpacked layers (``layers.py``), both shared between
images; the catalog only names them.  ``in_use`` is the mark of the mark and
sweep that ``ImageStore.collect`` runs after a delete or a prune.

Every change rewrites one small JSON file through a temporary file and
rename(2) under one lock, so a reader (or a crash) sees the old file or the
new one.  An image record is written before the tag that names it (a crash
in between leaves a dangling image, which ``prune`` removes), and a tag is
removed before the record it points at.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.images.oci import check_digest, digest_hex
from runtime.images.reference import Reference
from runtime.timeutil import now_rfc3339


@dataclass(frozen=True)
class CatalogEntry:
    """One pulled (or loaded) image, as recorded."""

    id: str  # sha256:… of the config blob
    manifests: tuple[str, ...]  # the manifest digests it came as (blobs to keep)
    repo_digests: tuple[str, ...]  # "registry/repository@sha256:…", canonical
    diff_ids: tuple[str, ...]  # bottom first
    size_bytes: int
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "manifests": list(self.manifests),
            "repo_digests": list(self.repo_digests),
            "diff_ids": list(self.diff_ids),
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CatalogEntry:
        return cls(
            id=check_digest(doc["id"], "id"),
            manifests=tuple(doc.get("manifests", ())),
            repo_digests=tuple(doc.get("repo_digests", ())),
            diff_ids=tuple(doc.get("diff_ids", ())),
            size_bytes=int(doc.get("size_bytes", 0)),
            created_at=str(doc.get("created_at", "")),
        )


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._images = root / "images"
        self._tags_path = root / "tags.json"
        self._images.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()

    # -- queries --------------------------------------------------------
    def tags(self) -> dict[str, str]:
        try:
            with self._tags_path.open() as f:
                loaded = json.load(f)
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in loaded.items()}

    def entry(self, image_id: str) -> CatalogEntry | None:
        try:
            with (self._images / f"{digest_hex(image_id)}.json").open() as f:
                return CatalogEntry.from_json(json.load(f))
        except (FileNotFoundError, ValueError):
            return None

    def entries(self) -> list[CatalogEntry]:
        found = []
        for path in sorted(self._images.glob("*.json")):
            entry = self.entry("sha256:" + path.stem)
            if entry is not None:
                found.append(entry)
        return found

    def tags_of(self, image_id: str) -> list[str]:
        return sorted(t for t, i in self.tags().items() if i == image_id)

    def find(self, ref: Reference) -> CatalogEntry | None:
        """The image a reference names: by digest (a repo digest or a
        manifest digest of that repository), else by tag."""
        if ref.digest is not None:
            wanted = f"{ref.registry}/{ref.repository}@{ref.digest}"
            for entry in self.entries():
                if wanted in entry.repo_digests:
                    return entry
            return None
        image_id = self.tags().get(ref.canonical())
        return self.entry(image_id) if image_id else None

    def find_id(self, text: str) -> CatalogEntry | None:
        """By id: ``sha256:<hex>``, or a hex prefix of at least 12 digits."""
        hex_part = text.removeprefix("sha256:")
        if len(hex_part) < 12 or any(c not in "0123456789abcdef" for c in hex_part):
            return None
        matches = [e for e in self.entries() if digest_hex(e.id).startswith(hex_part)]
        return matches[0] if len(matches) == 1 else None

    def in_use(self) -> tuple[set[str], set[str]]:
        """The blobs and diff ids the recorded images name (the mark)."""
        blobs: set[str] = set()
        layers: set[str] = set()
        for entry in self.entries():
            blobs.add(entry.id)
            blobs.update(entry.manifests)
            layers.update(entry.diff_ids)
        return blobs, layers

    # -- changes --------------------------------------------------------
    def add(self, entry: CatalogEntry, ref: Reference | None) -> CatalogEntry:
        """Record an image (merged with what is known of it), then tag it."""
        with self.lock:
            known = self.entry(entry.id)
            if known is not None:
                entry = CatalogEntry(
                    id=entry.id,
                    manifests=_union(known.manifests, entry.manifests),
                    repo_digests=_union(known.repo_digests, entry.repo_digests),
                    diff_ids=entry.diff_ids,
                    size_bytes=entry.size_bytes,
                    created_at=known.created_at,
                )
            self._write(self._images / f"{digest_hex(entry.id)}.json", entry.to_json())
            if ref is not None and ref.tag is not None:
                self.tag(entry.id, ref)
        return entry

    def tag(self, image_id: str, ref: Reference) -> None:
        """Point ``ref``'s tag at the image (moving it from any other)."""
        assert ref.tag is not None
        with self.lock:
            tags = self.tags()
            tags[f"{ref.registry}/{ref.repository}:{ref.tag}"] = check_digest(image_id)
            self._write(self._tags_path, tags)

    def untag(self, tag: str) -> str | None:
        """Remove one canonical tag; the id it named."""
        with self.lock:
            tags = self.tags()
            image_id = tags.pop(tag, None)
            if image_id is not None:
                self._write(self._tags_path, tags)
            return image_id

    def remove(self, image_id: str) -> list[str]:
        """Forget an image and every tag naming it; the tags removed."""
        with self.lock:
            tags = self.tags()
            gone = [t for t, i in tags.items() if i == image_id]
            if gone:
                self._write(self._tags_path, {t: i for t, i in tags.items() if i != image_id})
            (self._images / f"{digest_hex(image_id)}.json").unlink(missing_ok=True)
            return sorted(gone)

    @staticmethod
    def new_entry(
        image_id: str,
        manifests: Iterable[str],
        repo_digests: Iterable[str],
        diff_ids: Iterable[str],
        size_bytes: int,
    ) -> CatalogEntry:
        return CatalogEntry(
            id=image_id,
            manifests=tuple(manifests),
            repo_digests=tuple(repo_digests),
            diff_ids=tuple(diff_ids),
            size_bytes=size_bytes,
            created_at=now_rfc3339(),
        )

    def _write(self, path: Path, doc: object) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return old + tuple(x for x in new if x not in old)
