"""One pull, composed: resolve → blobs → layers.

``pull(ref, registry, blobs, layers)`` resolves the reference (``registry.py``),
keeps the manifest and config in the blob store (so a later ``gc`` can mark
from them), fetches each layer blob once (``blobs.py``, verified against its
descriptor) and unpacks it once per diff id (``layers.py``, verified against
the config's ``rootfs.diff_ids``).  The result names everything a container's
root needs: ``lowerdir`` for overlayfs and the parsed ``ImageConfig``.

``progress`` is told, per layer, what Docker's pull progress says (``Pulling
fs layer``, ``Already exists``, ``Downloading`` with bytes, ``Download
complete``, ``Extracting``, ``Pull complete``); ``hold`` is told every blob
and diff id the pull needs before it fetches them, so that a sweep running
meanwhile keeps them (``layered.LayeredImages``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.images.blobs import BlobStore
from runtime.images.layers import LayerStore
from runtime.images.oci import Descriptor, ImageConfig
from runtime.images.reference import Reference
from runtime.images.registry import Credentials, RegistryClient

log = logging.getLogger("mydocker.images")


@dataclass(frozen=True)
class PullProgress:
    """One step of one layer (``id`` is its digest's first 12 hex digits, as Docker shows)."""

    id: str
    status: str
    current: int = 0
    total: int = 0


Progress = Callable[[PullProgress], None]
#: The bytes between two ``Downloading`` reports of a layer.
PROGRESS_STEP = 512 << 10


@dataclass(frozen=True)
class PulledImage:
    reference: Reference
    digest: str  # the manifest's, what ``docker images --digests`` shows
    config_digest: str  # the image id, as Docker names it
    config: ImageConfig
    layers: tuple[Path, ...]  # bottom first
    lowerdir: str  # overlayfs lowerdir=, top first
    size_bytes: int = 0  # the layers' compressed sizes, what a pull transfers


def pull(
    ref: Reference,
    registry: RegistryClient,
    blobs: BlobStore,
    layers: LayerStore,
    *,
    credentials: Credentials | None = None,
    progress: Progress | None = None,
    hold: Callable[[str], None] | None = None,
) -> PulledImage:
    tell: Progress = progress or (lambda event: None)
    keep: Callable[[str], None] = hold or (lambda key: None)
    image = registry.resolve(ref, credentials=credentials, cached=blobs.cached)
    manifest = image.manifest
    for key in (image.digest, manifest.config.digest, *image.config.diff_ids):
        keep(key)
    for layer in manifest.layers:
        keep(layer.digest)
    blobs.put(
        Descriptor(manifest.media_type, image.digest, len(image.manifest_bytes)),
        image.manifest_bytes,
    )
    blobs.put(manifest.config, image.config_bytes)
    paths = []
    pairs = list(zip(manifest.layers, image.config.diff_ids, strict=True))
    for layer, _ in pairs:
        tell(PullProgress(_short(layer.digest), "Pulling fs layer", 0, layer.size))
    for layer, diff_id in pairs:
        short = _short(layer.digest)
        if layers.has(diff_id):
            tell(PullProgress(short, "Already exists", layer.size, layer.size))
            paths.append(layers.path(diff_id))
            continue

        def source(layer: Descriptor = layer, short: str = short):  # type: ignore[no-untyped-def]
            chunks = registry.blob(ref, layer, credentials=credentials, source=image.source)
            return _counted(chunks, short, layer.size, tell)

        blob = blobs.fetch(layer, source)
        tell(PullProgress(short, "Download complete", layer.size, layer.size))
        tell(PullProgress(short, "Extracting", 0, layer.size))
        paths.append(layers.unpack(blob, layer.media_type, diff_id))
        tell(PullProgress(short, "Pull complete", layer.size, layer.size))
    log.info("pulled %s (%s, %d layers)", ref.canonical(), image.digest, len(paths))
    return PulledImage(
        reference=ref,
        digest=image.digest,
        config_digest=manifest.config.digest,
        config=image.config,
        layers=tuple(paths),
        lowerdir=layers.lowerdir(image.config.diff_ids),
        size_bytes=sum(layer.size for layer in manifest.layers),
    )


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


@contextlib.contextmanager
def _counted(
    chunks: contextlib.AbstractContextManager[Iterator[bytes]],
    short: str,
    total: int,
    tell: Progress,
) -> Iterator[Iterator[bytes]]:
    """The blob's chunks, with a ``Downloading`` report every ``PROGRESS_STEP`` bytes."""

    def counting(inner: Iterator[bytes]) -> Iterator[bytes]:
        done = reported = 0
        for chunk in inner:
            done += len(chunk)
            if done - reported >= PROGRESS_STEP or done == total:
                reported = done
                tell(PullProgress(short, "Downloading", done, total))
            yield chunk

    with chunks as inner:
        yield counting(iter(inner))
