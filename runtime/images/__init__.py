"""Images: read-only root filesystems that containers start from.

store      the image store under ``<state_dir>/images`` and ``normalize_name``
builtin    ``host`` (a view of the host's programs) and ``busybox`` (from busybox-static)
hostview   what the ``host`` image shows: its read-only host dirs, links, /etc masks
importer   safe extraction of a tar/tar.gz stream into a new image (and of a layer)

Pulled images (``store.ImageStore.layered``; runtime/imaging.py has the verbs):
reference  image references as Docker parses them: ``parse``, ``Reference``
oci        manifests, indexes, configs, media types, platform selection
registry   the distribution-API client: manifests, blobs, token and basic auth
blobs      the content-addressed blob store ``<state>/images/blobs/sha256/<hex>``
layers     layers unpacked once per diff id, whiteouts as overlayfs ones
once       one in-flight job per key (one download per digest, one unpack per layer)
pull       resolve → blobs → layers, composed, with per-layer progress
catalog    which pulled images exist: ids, manifest and repo digests, tags
layered    pulled images in the store: pull, find, tag, remove, collect, shifted layers
shift      copies of trees owned by a user namespace's ids (images and layers)
archive    docker save / OCI layout tarballs: save and load
building   Docker's import and commit: a root's tar as a layered image with a config
instructions  ``--change`` lines (CMD, ENV, EXPOSE, …) applied to an image config
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.images.store import (
        DEFAULT_MAX_BYTES,
        Image,
        ImageStore,
        ImportJob,
        normalize_name,
    )


def __getattr__(name: str) -> object:
    """The store's names, imported on first use (PEP 562): the launcher and
    the child need ``builtin``, ``hostview`` and ``viewtrees`` only, not the
    store, the puller and the registry's HTTP client behind it."""
    if name not in __all__:
        raise AttributeError(f"module 'runtime.images' has no attribute {name!r}")
    from runtime.images import store

    value = getattr(store, name)
    globals()[name] = value
    return value


__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageStore", "ImportJob", "normalize_name"]
