"""How much disk a container's writable layer takes (``docker system df``,
``docker ps --size``).

    tree_bytes      the bytes of the regular files under a directory, links
                    not followed, each inode counted once
    writable_dir    where a container's writes go: its overlay's upper dir
"""

from __future__ import annotations

import os
import stat

from runtime.spec import LAYER_RW


def tree_bytes(path: str) -> int:
    """What ``du --apparent-size`` says of the files (not the directories)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def writable_dir(container_dir: str) -> str:
    """The overlay's upper dir (runtime/planning.py ``make_root_dirs``)."""
    return os.path.join(container_dir, "layer", LAYER_RW, "upper")
