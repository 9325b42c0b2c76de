"""Images: read-only root filesystems that containers start from.

store      the image store under ``<state_dir>/images`` and ``normalize_name``
builtin    ``host`` (the host's ``/``) and ``busybox`` (from busybox-static)
importer   safe extraction of a tar/tar.gz stream into a new image
"""

from runtime.images.store import DEFAULT_MAX_BYTES, Image, ImageStore, ImportJob, normalize_name

__all__ = ["DEFAULT_MAX_BYTES", "Image", "ImageStore", "ImportJob", "normalize_name"]
