"""One pull, composed: resolve → blobs → layers.

``pull(ref, registry, blobs, layers)`` resolves the reference (``registry.py``),
keeps the manifest and config in the blob store (so a later ``gc`` can mark
from them), fetches each layer blob once (``blobs.py``, verified against its
descriptor) and unpacks it once per diff id (``layers.py``, verified against
the config's ``rootfs.diff_ids``).  The result names everything a container's
root needs: ``lowerdir`` for overlayfs and the parsed ``ImageConfig``.

Not yet wired into the API or into ``store.ImageStore``: that is issue 14's
next step (docs/images.md, "Pulling from registries").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from runtime.images.blobs import BlobStore
from runtime.images.layers import LayerStore
from runtime.images.oci import Descriptor, ImageConfig
from runtime.images.reference import Reference
from runtime.images.registry import Credentials, RegistryClient

log = logging.getLogger("mydocker.images")


@dataclass(frozen=True)
class PulledImage:
    reference: Reference
    digest: str  # the manifest's, what ``docker images --digests`` shows
    config_digest: str  # the image id, as Docker names it
    config: ImageConfig
    layers: tuple[Path, ...]  # bottom first
    lowerdir: str  # overlayfs lowerdir=, top first


def pull(
    ref: Reference,
    registry: RegistryClient,
    blobs: BlobStore,
    layers: LayerStore,
    *,
    credentials: Credentials | None = None,
) -> PulledImage:
    image = registry.resolve(ref, credentials=credentials)
    manifest = image.manifest
    blobs.put(
        Descriptor(manifest.media_type, image.digest, len(image.manifest_bytes)),
        image.manifest_bytes,
    )
    blobs.put(manifest.config, image.config_bytes)
    paths = []
    for layer, diff_id in zip(manifest.layers, image.config.diff_ids, strict=True):

        def source(layer: Descriptor = layer):  # type: ignore[no-untyped-def]
            return registry.blob(ref, layer, credentials=credentials, source=image.source)

        blob = blobs.fetch(layer, source)
        paths.append(layers.unpack(blob, layer.media_type, diff_id))
    log.info("pulled %s (%s, %d layers)", ref.canonical(), image.digest, len(paths))
    return PulledImage(
        reference=ref,
        digest=image.digest,
        config_digest=manifest.config.digest,
        config=image.config,
        layers=tuple(paths),
        lowerdir=layers.lowerdir(image.config.diff_ids),
    )
