"""Images made of layers (pulled from a registry): pull, look up, tag, remove, collect.

    <state>/images/blobs/     content-addressed blobs (blobs.py)
    <state>/images/layers/    unpacked layers, one per diff id (layers.py)
    <state>/images/catalog/   which images exist and their tags (catalog.py)
    <state>/images/.userns-H/layers/<hex>   a layer's copy owned by user namespace ids H..

``LayeredImages`` is the part of ``store.ImageStore`` that deals with them;
``ImageStore.get`` asks it after the built-in and imported images.  A pull
fetches and unpacks what is missing (``pull.pull``), records the image in
the catalog and tags it, in that order: an image is visible only once
all its layers are in place.  A failed pull records nothing, then sweeps
what it left (``collect``): no image, no stray blob or layer.  The sweep
keeps what in-flight pulls hold (``_held``), so it never deletes a layer
another pull has just fetched and not yet recorded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import InvalidArgument, NotFound
from runtime.images.blobs import BlobStore
from runtime.images.catalog import Catalog, CatalogEntry
from runtime.images.layers import LayerStore
from runtime.images.oci import ImageConfig, Manifest, digest_hex, parse_config, parse_manifest
from runtime.images.pull import Progress, pull
from runtime.images.reference import Reference, parse
from runtime.images.registry import Credentials, RegistryClient
from runtime.images.shift import copy_shifted

log = logging.getLogger("mydocker.images")


@dataclass(frozen=True)
class LayeredImage:
    entry: CatalogEntry
    tags: tuple[str, ...]  # familiar: busybox:latest, localhost:5000/x:1
    digests: tuple[str, ...]  # familiar repo digests: busybox@sha256:…
    config: ImageConfig
    layers: tuple[str, ...]  # unpacked layer dirs, bottom first


def familiar(canonical: str) -> str:
    """``docker.io/library/busybox:1`` -> ``busybox:1`` (a tag or a repo digest)."""
    return parse(canonical).familiar()


class LayeredImages:
    def __init__(self, root: str) -> None:
        self.root = root
        base = Path(root)
        self.blobs = BlobStore(base / "blobs")
        self.layers = LayerStore(base / "layers")
        self.catalog = Catalog(base / "catalog")
        self._held: Counter[str] = Counter()
        self._held_lock = threading.Lock()
        self._shift_lock = threading.Lock()

    # -- queries --------------------------------------------------------
    def find(self, text: str) -> LayeredImage | None:
        """By id (``sha256:…`` or 12+ hex digits), digest or tag; ``None`` if unknown."""
        entry = self.catalog.find_id(text)
        if entry is None:
            try:
                ref = parse(text)
            except InvalidArgument:
                return None
            entry = self.catalog.find(ref)
        return None if entry is None else self.describe(entry)

    def describe(self, entry: CatalogEntry) -> LayeredImage:
        config = parse_config(self.blobs.read(entry.id))
        return LayeredImage(
            entry=entry,
            tags=tuple(familiar(t) for t in self.catalog.tags_of(entry.id)),
            digests=tuple(familiar(d) for d in entry.repo_digests),
            config=config,
            layers=tuple(str(self.layers.path(d)) for d in entry.diff_ids),
        )

    def all(self) -> list[LayeredImage]:
        return [self.describe(e) for e in self.catalog.entries()]

    # -- pull -----------------------------------------------------------
    def pull(
        self,
        ref: Reference,
        client: RegistryClient,
        *,
        credentials: Credentials | None = None,
        progress: Progress | None = None,
    ) -> LayeredImage:
        try:
            with self.holding() as hold:
                pulled = pull(
                    ref,
                    client,
                    self.blobs,
                    self.layers,
                    credentials=credentials,
                    progress=progress,
                    hold=hold,
                )
                repo = f"{ref.registry}/{ref.repository}"
                entry = self.catalog.new_entry(
                    pulled.config_digest,
                    manifests=(pulled.digest,),
                    repo_digests=(f"{repo}@{pulled.digest}",),
                    diff_ids=pulled.config.diff_ids,
                    size_bytes=pulled.size_bytes,
                )
                entry = self.catalog.add(entry, ref)
        except BaseException:
            self.collect()  # what this pull fetched and no image names
            raise
        return self.describe(entry)

    def record(
        self,
        image_id: str,
        manifest_digest: str,
        diff_ids: tuple[str, ...],
        manifest: Manifest,
        tags: list[Reference],
    ) -> LayeredImage:
        """Record an image whose blobs and layers are in place (a load), then tag it."""
        entry = self.catalog.new_entry(
            image_id,
            manifests=(manifest_digest,),
            repo_digests=(),
            diff_ids=diff_ids,
            size_bytes=sum(layer.size for layer in manifest.layers),
        )
        entry = self.catalog.add(entry, None)
        for ref in tags:
            if ref.tag is not None:
                self.catalog.tag(entry.id, ref)
        return self.describe(entry)

    @contextlib.contextmanager
    def holding(self) -> Iterator[Callable[[str], None]]:
        held: list[str] = []

        def hold(key: str) -> None:
            with self._held_lock:
                self._held[key] += 1
            held.append(key)

        try:
            yield hold
        finally:
            with self._held_lock:
                for key in held:
                    self._held[key] -= 1
                    if self._held[key] <= 0:
                        del self._held[key]

    # -- changes --------------------------------------------------------
    def tag(self, image_id: str, ref: Reference) -> None:
        self.catalog.tag(image_id, ref)

    def untag(self, ref: Reference) -> str | None:
        return self.catalog.untag(f"{ref.registry}/{ref.repository}:{ref.tag}")

    def remove(self, image_id: str) -> list[str]:
        """Forget an image and its tags, then free what no other image uses."""
        if self.catalog.entry(image_id) is None:
            raise NotFound("image", image_id)
        gone = self.catalog.remove(image_id)
        self.collect()
        return [familiar(t) for t in gone]

    def dangling(self) -> list[CatalogEntry]:
        tagged = set(self.catalog.tags().values())
        return [e for e in self.catalog.entries() if e.id not in tagged]

    def collect(self) -> tuple[list[str], list[str]]:
        """Delete blobs and layers no recorded image (nor a pull under way) names."""
        with self.catalog.lock, self._held_lock:
            blobs, layers = self.catalog.in_use()
            blobs |= self._layer_blobs(blobs)
            held = set(self._held)
            freed_blobs = self.blobs.gc(blobs | held)
            freed_layers = self.layers.gc(layers | held)
        for diff_id in freed_layers:
            for shifted in Path(self.root).glob(f".userns-*/layers/{digest_hex(diff_id)}"):
                shutil.rmtree(shifted, ignore_errors=True)
        if freed_blobs or freed_layers:
            log.info("freed %d blobs and %d layers", len(freed_blobs), len(freed_layers))
        return freed_blobs, freed_layers

    def _layer_blobs(self, marked: set[str]) -> set[str]:
        """The layer blobs the marked manifests name: ``docker save`` writes
        them, so they are kept as long as an image is (not only its unpacked layers)."""
        found: set[str] = set()
        for digest in marked:
            raw = self.blobs.cached(digest)
            if raw is None or b'"layers"' not in raw:
                continue  # a config, or a manifest no longer here
            try:
                manifest = parse_manifest(raw, "")
            except InvalidArgument:
                continue
            if isinstance(manifest, Manifest):
                found.update(layer.digest for layer in manifest.layers)
        return found

    # -- user namespaces -------------------------------------------------
    def shifted_layers(self, image: LayeredImage, host_id: int, size: int) -> tuple[str, ...]:
        """The image's layers with ids 0..size-1 moved to host_id.., each made once."""
        base = os.path.join(self.root, f".userns-{host_id}", "layers")
        result = []
        with self._shift_lock:
            os.makedirs(base, mode=0o700, exist_ok=True)
            for layer in image.layers:
                done = os.path.join(base, os.path.basename(layer))
                if not os.path.isdir(done):
                    staging = tempfile.mkdtemp(prefix=".shift-", dir=base)
                    try:
                        copy_shifted(layer, os.path.join(staging, "tree"), host_id, size)
                        os.rename(os.path.join(staging, "tree"), done)
                    finally:
                        shutil.rmtree(staging, ignore_errors=True)
                result.append(done)
        return tuple(result)
