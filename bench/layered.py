"""A multi-layer image for the bench: the busybox rootfs split into layers, loaded.

``load_layered(service, rootfs, layers)`` builds a ``docker save`` tarball of
the rootfs in ``layers`` layers (the directories in the first, the files dealt
out round-robin over all of them, gzip each) and loads it with ``POST
/images/load`` as ``bench/layered:<layers>``: what a pull leaves in the store,
without a registry, so that the row measures the multi-lowerdir overlay the
container's root gets from a pulled image (issue 14's speed budget: no more
than busybox's single-lowerdir one).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx

from bench.service import Service


def _tar(root: Path, paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def archive(rootfs: Path, layers: int, name: str) -> bytes:
    entries = sorted(rootfs.rglob("*"))
    dirs = [p for p in entries if p.is_dir() and not p.is_symlink()]
    others = [p for p in entries if p not in dirs]
    chunks = [dirs + others[0::layers]] + [others[i::layers] for i in range(1, layers)]
    tars = [_tar(rootfs, chunk) for chunk in chunks]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"], "Env": ["PATH=/bin"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars],
        },
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(member: str, data: bytes) -> None:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        config_bytes = json.dumps(config).encode()
        add("config.json", config_bytes)
        names = []
        for index, layer in enumerate(tars):
            names.append(f"layer{index}.tar.gz")
            add(names[-1], gzip.compress(layer, mtime=0))
        add(
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": [name], "Layers": names}]).encode(),
        )
    return out.getvalue()


def load_layered(service: Service, rootfs: Path, layers: int) -> str:
    """The loaded image's name (``bench/layered:<layers>``)."""
    name = f"bench/layered:{layers}"
    response = httpx.post(
        f"{service.url}/images/load", content=archive(rootfs, layers, name), timeout=120
    )
    response.raise_for_status()
    return name
