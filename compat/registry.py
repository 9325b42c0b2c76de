"""A real registry and OCI image layouts, for the tests and the conformance harness.

Registry      Debian's ``docker-registry`` on a free loopback port with a temp
              config (and an htpasswd file for basic auth); never the Debian
              service; ``push`` copies a layout's tag into it with ``skopeo copy``
Layout        an OCI image layout (image-spec image-layout.md) built with
              tarfile and hashlib: blobs, images (gzip layers), an index, tags
tar_layer     a layer's tar from (name, kind, data) members

tests/e2e/oci_registry.py (the registry tests) and compat/dockerpy.py (docker-py's
suite pulls from a registry mirror on loopback) share them.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.service import free_port

MTIME = 1_700_000_000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the registry -------------------------------------------------------------
def bcrypt(password: str) -> str:
    """An htpasswd line's hash: the registry accepts bcrypt only (libxcrypt has it)."""
    libcrypt = ctypes.CDLL("libcrypt.so.1")
    libcrypt.crypt_gensalt.restype = ctypes.c_char_p
    libcrypt.crypt_gensalt.argtypes = [
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = libcrypt.crypt_gensalt(b"$2b$", 5, None, 0)
    hashed = libcrypt.crypt(password.encode(), setting)
    assert hashed and hashed.startswith(b"$2b$"), hashed
    return str(hashed.decode())


@dataclass
class Registry:
    root: Path
    users: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt(p)}\n" for u, p in self.users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            f"http:\n  addr: {self.host}\n" + auth
        )
        with (self.root / "registry.log").open("wb") as log:
            self.process = subprocess.Popen(
                ["/usr/bin/docker-registry", "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log_text = (self.root / "registry.log").read_text()
        raise RuntimeError(f"docker-registry did not start: {log_text}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # our own child, by its Popen handle
            self.process.wait(10)

    def push(
        self,
        layout: Path,
        tag: str,
        repo: str,
        *,
        all_platforms: bool = False,
        creds: str | None = None,
    ) -> None:
        policy = layout.parent / "policy.json"
        policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        command = [
            "skopeo",
            "--policy",
            str(policy),
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ]
        if all_platforms:
            command.append("--all")
        if creds:
            command += ["--dest-creds", creds]
        command += [f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{tag}"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)


# -- images ---------------------------------------------------------------------
def tar_layer(members: list[tuple[str, str, bytes | str]]) -> bytes:
    """A tar of (name, kind, data) with kind 'dir', 'file', 'link' (symlink) or 'exe'."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            else:
                raw = data if isinstance(data, bytes) else data.encode()
                info.size, info.mode = len(raw), 0o755 if kind == "exe" else 0o644
                tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


class Layout:
    """An OCI image layout directory (image-layout.md): oci-layout, index.json, blobs/."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.refs: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str, **extra: object) -> dict[str, object]:
        (self.path / "blobs" / "sha256" / sha(data).removeprefix("sha256:")).write_bytes(data)
        return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}

    def image(
        self,
        layers: list[bytes],
        arch: str = "amd64",
        cmd: tuple[str, ...] = ("/bin/sh",),
        config_fields: dict[str, object] | None = None,
        top_fields: dict[str, object] | None = None,
    ) -> dict[str, object]:
        """Store an image (gzip layers); return its manifest's descriptor.
        ``config_fields`` replace the config's defaults (Cmd, Env, ...);
        ``top_fields`` are added beside ``config`` (``comment``, ``author``)."""
        config = {
            **(top_fields or {}),
            "architecture": arch,
            "os": "linux",
            "config": {
                "Cmd": list(cmd),
                "Env": ["PATH=/bin"],
                "WorkingDir": "/",
                "Labels": {"test": "registry"},
                **(config_fields or {}),
            },
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": self.blob(
                json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
            ),
            "layers": [
                self.blob(gzip.compress(t, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
                for t in layers
            ],
        }
        return self.blob(
            json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"
        )

    def index(self, manifests: list[dict[str, object]]) -> dict[str, object]:
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
        return self.blob(json.dumps(doc).encode(), "application/vnd.oci.image.index.v1+json")

    def tag(self, descriptor: dict[str, object], tag: str) -> None:
        self.refs.append({**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}})
        (self.path / "index.json").write_text(
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": self.refs,
                }
            )
        )
