"""The built-in images: ``host`` (a read-only view of the host's programs) and ``busybox``.

``host`` has no files of its own: the child builds its view of the host
(``runtime/images/hostview.py``, ``runtime.rootfs``).  ``busybox`` is
assembled from the statically linked ``/bin/busybox`` of Debian's
``busybox-static`` package (scripts/setup installs it): the binary, a
symlink per applet where ``busybox --list-full`` puts it, and the handful
of directories and files a shell expects.
"""

from __future__ import annotations

import os
import shutil
import subprocess

HOST = "host"
BUSYBOX = "busybox"
NAMES = (HOST, BUSYBOX)
BUSYBOX_BINARY = "/bin/busybox"
#: The host image is read-only; these get a private writable tmpfs each.
HOST_TMPFS = {"/tmp": 0o1777, "/run": 0o755, "/var/tmp": 0o1777}

_DIRS = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "dev": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "run": 0o755,
    "home": 0o755,
    "var": 0o755,
    "tmp": 0o1777,
    "var/tmp": 0o1777,
    "root": 0o700,
}
_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    ),
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
}


def build_busybox(rootfs: str, binary: str = BUSYBOX_BINARY) -> None:
    """Fill the empty directory ``rootfs`` with a busybox root filesystem."""
    for path, mode in _DIRS.items():
        full = os.path.join(rootfs, path)
        os.makedirs(full, exist_ok=True)
        os.chmod(full, mode)
    for path, text in _FILES.items():
        with open(os.path.join(rootfs, path), "w") as f:
            f.write(text)
    shutil.copy2(binary, os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run(
        [binary, "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, applet.lstrip("/"))
        if os.path.lexists(link) or applet.strip("/") == "bin/busybox":
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
