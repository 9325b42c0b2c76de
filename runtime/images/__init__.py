"""Images: read-only root filesystems that containers start from.

store      the image store under ``<state_dir>/images`` and ``normalize_name``
builtin    ``host`` (a view of the host's programs) and ``busybox`` (from busybox-static)
hostview   what the ``host`` image shows: its read-only host dirs, links, /etc masks
importer   safe extraction of a tar/tar.gz stream into a new image (and of a layer)

Pulling from registries (issue 14's groundwork, not wired into the API yet):
reference  image references as Docker parses them: ``parse``, ``Reference``
oci        manifests, indexes, configs, media types, platform selection
registry   the distribution-API client: manifests, blobs, token and basic auth
blobs      the content-addressed blob store ``<state>/images/blobs/sha256/<hex>``
layers     layers unpacked once per diff id, whiteouts as overlayfs ones
once       one in-flight job per key (one download per digest, one unpack per layer)
pull       resolve → blobs → layers, composed
"""

from runtime.images.store import DEFAULT_MAX_BYTES, Image, ImageStore, ImportJob, normalize_name

__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageStore", "ImportJob", "normalize_name"]
