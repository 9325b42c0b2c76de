"""File access to a cgroup filesystem, and the seam for the fake tree in tests.

The kernel creates a cgroup's control files on mkdir(2) and refuses new
ones, so writes open existing files only (no ``O_CREAT``).  A fake tree in
tests subclasses ``CgroupFs`` to play the kernel's part: populate control
files on ``mkdir``, refuse ``rmdir`` while ``cgroup.procs`` is not empty.
"""

from __future__ import annotations

import os


class CgroupFs:
    def read(self, path: str) -> str:
        # os.read, not open(): a text file object costs 8 µs against 3 µs
        # here, and the launcher reads a dozen control files per exit.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks).decode("ascii")

    def write(self, path: str, text: str) -> None:
        # One write(2) per value: cgroupfs parses each write as a whole.
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode("ascii"))
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mkdir(self, path: str) -> None:
        """Create a cgroup (and its missing ancestors); an existing one is fine.

        A launcher sweeping empty parents (``Manager.remove_empty_parents``)
        may rmdir an ancestor between two of makedirs' mkdirs: try again."""
        for attempt in range(3):
            try:
                os.makedirs(path, exist_ok=True)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def rmdir(self, path: str) -> None:
        """Remove a cgroup; cgroup directories are removed with rmdir(2) even
        though they list control files (cgroups(7))."""
        os.rmdir(path)

    def rename(self, path: str, new: str) -> None:
        """Rename a cgroup within its parent (rename(2); kernfs allows it for
        a cgroup directory, its processes and limits stay)."""
        os.rename(path, new)

    def subdirs(self, path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
