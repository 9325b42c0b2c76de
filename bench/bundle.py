"""The busybox rootfs and the OCI bundles that crun and runc run.

The rootfs is assembled the way the service's built-in ``busybox`` image is
(issue 3): Debian's static busybox and its applet links.  Each runtime writes
its own default ``config.json`` (``crun spec`` / ``runc spec``); we change
only what the comparison needs: the command, no terminal, and the same
namespaces as mydocker's containers (mount, PID, UTS, network, IPC).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
NAMESPACES = ("ipc", "mount", "network", "pid", "uts")


def busybox_rootfs(target: Path) -> Path:
    """``target`` with bin/busybox, its applets as symlinks, and mount points."""
    if not BUSYBOX.exists():
        raise FileNotFoundError(f"{BUSYBOX} is missing (Debian package busybox-static)")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (target / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = target / "bin" / applet
        if applet != "busybox" and not link.is_symlink():
            link.symlink_to("busybox")
    return target


def oci_bundle(tool: str, bundle: Path, rootfs: Path, args: list[str]) -> Path:
    """A bundle dir for ``tool`` ("crun" or "runc") running ``args`` in ``rootfs``."""
    bundle.mkdir(parents=True, exist_ok=True)
    config_path = bundle / "config.json"
    config_path.unlink(missing_ok=True)
    subprocess.run([tool, "spec"], cwd=bundle, check=True, capture_output=True)
    config = json.loads(config_path.read_text())
    config["root"]["path"] = str(rootfs)
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    config["linux"]["namespaces"] = [{"type": t} for t in NAMESPACES]
    config_path.write_text(json.dumps(config, indent=1))
    return bundle
