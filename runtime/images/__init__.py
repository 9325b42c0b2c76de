"""Images: read-only root filesystems that containers start from.

store      the image store under ``<state_dir>/images`` and ``normalize_name``
builtin    ``host`` (a view of the host's programs) and ``busybox`` (from busybox-static)
hostview   what the ``host`` image shows: its read-only host dirs, links, /etc masks
importer   safe extraction of a tar/tar.gz stream into a new image
"""

from runtime.images.store import DEFAULT_MAX_BYTES, Image, ImageStore, ImportJob, normalize_name

__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageStore", "ImportJob", "normalize_name"]
