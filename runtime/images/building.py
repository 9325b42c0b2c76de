"""Images made here from a root's tar: ``docker import`` and ``docker commit``.

    BuildRequest                   what an import or commit asks for: name, changes, …
    merge_config(user, base)       a commit's config body over the container's config
    BuildJob(layered, max_bytes)   write(chunk)… then finish(config, ref, history)

The tar (plain, gzip, bzip2 or xz, as ``docker import`` takes it) is spooled
to ``<images>/.build-XXXX/archive``, then becomes an image like a pulled one,
so it has an id (its config's digest), a config, tags, and can be saved:

    archive --decompress, hash--> blobs/  one uncompressed layer (OCI_LAYER),
                                          its digest is its diff id
            --unpack--> layers/           (layers.py: the import's safe extraction)
    config  config blob: ``ImageConfig`` + rootfs + history (created, created_by,
            author, comment), Docker's top-level author/comment/parent
    manifest blob, then the catalog records the image, then the tag (``ref``;
    none: an untagged image, as ``docker commit CONTAINER`` makes)

A failure anywhere leaves no image; ``LayeredImages.collect`` sweeps the
blobs and layer it stored.  A commit's image is one layer of the whole root
(the container's root exported), not its parent's layers plus a diff: the
parent is recorded (``Parent`` in an inspect), its layers are not shared.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import gzip
import hashlib
import json
import lzma
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runtime.errors import InvalidArchive, TooLarge
from runtime.images.layered import LayeredImage, LayeredImages
from runtime.images.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    Manifest,
    host_platform,
    parse_manifest,
)
from runtime.images.reference import Reference
from runtime.timeutil import now_rfc3339

_CHUNK = 1 << 20
#: Magic numbers of the compressions ``docker import`` takes (archive/archive.go).
_OPENERS: tuple[tuple[bytes, Any], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


@dataclass(frozen=True)
class BuildRequest:
    """What an import or a commit asks for (Docker's ``repo``/``tag``, ``changes``,
    ``comment``, ``author`` and, for a commit, a config body)."""

    #: The new image's name (``test/imported:1``); ``None``: untagged.
    ref: str | None = None
    changes: tuple[str, ...] = ()
    #: A commit's config body: its set fields win over the container's config.
    config: ImageConfig | None = None
    comment: str = ""
    author: str = ""
    #: Pause a running container while its root is read (a commit).
    pause: bool = True


def merge_config(user: ImageConfig | None, base: ImageConfig) -> ImageConfig:
    """``user``'s fields where it sets them, ``base``'s elsewhere (moby's
    daemon/commit.go ``merge``): Env, Labels, ExposedPorts and Volumes are
    unions (the user's variables and labels win), an Entrypoint or Cmd of the
    user replaces both of base's argv parts only when it sets either."""
    if user is None:
        return base
    keys = {entry.split("=", 1)[0] for entry in user.env}
    argv_set = user.cmd is not None or user.entrypoint is not None
    return dataclasses.replace(
        base,
        env=user.env + tuple(e for e in base.env if e.split("=", 1)[0] not in keys),
        labels={**base.labels, **user.labels},
        exposed_ports=tuple(sorted({*base.exposed_ports, *user.exposed_ports})),
        volumes=tuple(sorted({*base.volumes, *user.volumes})),
        cmd=user.cmd if argv_set else base.cmd,
        entrypoint=user.entrypoint if argv_set else base.entrypoint,
        working_dir=user.working_dir or base.working_dir,
        user=user.user or base.user,
        stop_signal=user.stop_signal or base.stop_signal,
        healthcheck=user.healthcheck or base.healthcheck,
    )


@dataclass(frozen=True)
class History:
    """The history entry the new layer gets (config.md's ``history``)."""

    created_by: str = ""
    author: str = ""
    comment: str = ""


def config_document(config: ImageConfig, diff_ids: tuple[str, ...], history: History) -> bytes:
    """The config blob (config.md, with Docker's author/comment/parent) of ``config``."""
    inner: dict[str, Any] = {
        "Env": list(config.env),
        "Cmd": list(config.cmd) if config.cmd is not None else None,
        "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "WorkingDir": config.working_dir,
        "User": config.user,
        "Labels": dict(config.labels) or None,
        "ExposedPorts": {port: {} for port in config.exposed_ports} or None,
        "Volumes": {path: {} for path in config.volumes} or None,
        "StopSignal": config.stop_signal or None,
    }
    if config.healthcheck is not None:
        inner["Healthcheck"] = config.healthcheck.to_json()
    created = now_rfc3339()
    platform = host_platform()
    entry = {"created": created, "created_by": history.created_by}
    entry.update({k: v for k, v in (("author", history.author), ("comment", history.comment)) if v})
    doc: dict[str, Any] = {
        "architecture": config.architecture or platform.architecture,
        "os": config.os or "linux",
        "created": created,
        "config": {k: v for k, v in inner.items() if v is not None},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [entry],
    }
    for key, value in (("author", config.author), ("comment", config.comment)):
        if value:
            doc[key] = value
    if config.parent:
        doc["parent"] = config.parent
    return json.dumps(doc, sort_keys=True).encode()


class BuildJob:
    """One import or commit: ``write`` the tar's chunks, then ``finish`` (or ``abort``)."""

    def __init__(self, layered: LayeredImages, max_bytes: int) -> None:
        self.layered = layered
        self.max_bytes = max_bytes
        self.staging = Path(tempfile.mkdtemp(prefix=".build-", dir=layered.root))
        self._file = (self.staging / "archive").open("wb")
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_bytes:
            self.abort()
            raise TooLarge(f"the archive is larger than the cap of {self.max_bytes} bytes")
        self._file.write(chunk)

    def write_all(self, chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                self.write(chunk)
        except BaseException:
            self.abort()
            raise

    def finish(self, config: ImageConfig, ref: Reference | None, history: History) -> LayeredImage:
        """The image, recorded (and tagged ``ref``); nothing of it on any error."""
        try:
            with self.layered.holding() as hold:
                return self._build(config, ref, history, hold)
        except BaseException:
            self.layered.collect()  # what this build stored and no image names
            raise
        finally:
            self.abort()

    def _build(
        self,
        config: ImageConfig,
        ref: Reference | None,
        history: History,
        hold: Callable[[str], None],
    ) -> LayeredImage:
        self._file.close()
        layer = self._layer_blob(hold)
        diff_id = layer.digest
        self.layered.layers.unpack(self.layered.blobs.path(diff_id), OCI_LAYER, diff_id)
        raw_config = config_document(config, (diff_id,), history)
        config_desc = _put(self.layered, OCI_CONFIG, raw_config, hold)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _json_descriptor(config_desc),
            "layers": [_json_descriptor(layer)],
        }
        raw = json.dumps(manifest).encode()
        manifest_desc = _put(self.layered, OCI_MANIFEST, raw, hold)
        parsed = parse_manifest(raw, OCI_MANIFEST)
        assert isinstance(parsed, Manifest)
        tags = [ref] if ref is not None else []
        return self.layered.record(
            config_desc.digest, manifest_desc.digest, (diff_id,), parsed, tags
        )

    def _layer_blob(self, hold: Callable[[str], None]) -> Descriptor:
        """The spooled archive, decompressed, as an uncompressed layer blob."""
        plain = self.staging / "layer.tar"
        digest = hashlib.sha256()
        size = 0
        with (self.staging / "archive").open("rb") as raw, plain.open("wb") as out:
            source = _decompressed(raw)
            try:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    if size > self.layered.layers.max_bytes:
                        raise TooLarge(
                            f"the archive's contents exceed {self.layered.layers.max_bytes} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            except (OSError, EOFError, lzma.LZMAError) as err:
                raise InvalidArchive(f"damaged archive: {err}") from None
        desc = Descriptor(OCI_LAYER, "sha256:" + digest.hexdigest(), size)
        hold(desc.digest)  # a blob and, as a diff id, a layer

        @contextlib.contextmanager
        def chunks() -> Iterator[Iterator[bytes]]:
            with plain.open("rb") as handle:
                yield iter(lambda: handle.read(_CHUNK), b"")

        self.layered.blobs.fetch(desc, chunks)
        return desc

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    head = raw.read(6)
    raw.seek(0)
    for magic, opener in _OPENERS:
        if head.startswith(magic):
            stream: IO[bytes] = opener(raw)
            return stream
    return raw


def _put(
    layered: LayeredImages, media_type: str, data: bytes, hold: Callable[[str], None]
) -> Descriptor:
    desc = Descriptor(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    hold(desc.digest)
    layered.blobs.put(desc, data)
    return desc


def _json_descriptor(desc: Descriptor) -> dict[str, Any]:
    return {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
