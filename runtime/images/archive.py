"""Pulled images as tarballs: ``save`` (``docker save``) and ``load`` (``docker load``).

A saved archive is both formats at once, as Docker 25 writes it:

    oci-layout, index.json        an OCI image layout (image-layout.md), one
                                  manifest per image, its name in the
                                  ``org.opencontainers.image.ref.name`` and
                                  ``io.containerd.image.name`` annotations
    manifest.json                 docker save's: Config, RepoTags, Layers
    blobs/sha256/<hex>            manifests, configs, layers as stored

``save`` writes the tags each image is given (``Imaging.save``: the tags named,
none for an image named by id, as Docker does); ``load`` returns each image with
the tags its archive gave it.  ``load`` takes either: ``manifest.json`` (docker
save, old ``<id>/layer.tar`` layout included) or an OCI layout's ``index.json``
(nested indexes pick the host's platform).  The archive is read from a file (the caller spools the
upload there); every blob is checked against its digest as it goes into the
blob store, every layer against the config's diff id as it is unpacked, and
the images are recorded only then (``LayeredImages.record``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from runtime.errors import InvalidArchive
from runtime.images.layered import LayeredImage, LayeredImages
from runtime.images.oci import (
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    digest_hex,
    host_platform,
    parse_config,
    parse_manifest,
    select_manifest,
)
from runtime.images.reference import Reference, parse

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class _Chunks:
    """A write-only file that keeps what is written until ``take``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> Iterator[bytes]:
        parts, self.parts = self.parts, []
        yield from parts


def save(store: LayeredImages, images: list[LayeredImage]) -> Iterator[bytes]:
    """The archive of ``images``, chunk by chunk (a layer at most in memory)."""
    out = _Chunks()
    tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    added: set[str] = set()

    def add(name: str, data: bytes | None = None, path: Path | None = None) -> Iterator[bytes]:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        if path is not None:
            info.size = path.stat().st_size
            with path.open("rb") as f:
                tar.addfile(info, f)
        else:
            assert data is not None
            info.size = len(data)
            tar.addfile(info, _reader(data))
        yield from out.take()

    yield from add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    index: list[dict[str, Any]] = []
    docker: list[dict[str, Any]] = []
    for image in images:
        manifest_digest = image.entry.manifests[0]
        raw = store.blobs.read(manifest_digest)
        manifest = parse_manifest(raw, "")
        assert isinstance(manifest, Manifest)
        layer_digests = [d.digest for d in manifest.layers]
        for digest in (manifest_digest, manifest.config.digest, *layer_digests):
            if digest not in added:
                added.add(digest)
                yield from add(f"blobs/sha256/{digest_hex(digest)}", path=store.blobs.path(digest))
        descriptor = {"mediaType": manifest.media_type, "digest": manifest_digest, "size": len(raw)}
        index += _index_entries(descriptor, image.tags)
        docker.append(
            {
                "Config": f"blobs/sha256/{digest_hex(manifest.config.digest)}",
                "RepoTags": list(image.tags),
                "Layers": [f"blobs/sha256/{digest_hex(d.digest)}" for d in manifest.layers],
            }
        )
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    yield from add("index.json", json.dumps(doc).encode())
    yield from add("manifest.json", json.dumps(docker).encode())
    tar.close()
    yield from out.take()


def _index_entries(descriptor: dict[str, Any], tags: tuple[str, ...]) -> list[dict[str, Any]]:
    """One entry of index.json per tag, named as Docker and containerd name them."""
    if not tags:
        return [descriptor]
    entries = []
    for tag in tags:
        ref = parse(tag)
        names = {REF_NAME: ref.tag or "", CONTAINERD_NAME: ref.canonical()}
        entries.append({**descriptor, "annotations": names})
    return entries


def _reader(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


def load(store: LayeredImages, archive: Path) -> list[LayeredImage]:
    """Load every image of a docker-save or OCI-layout archive; the images loaded."""
    try:
        tar = tarfile.open(archive, mode="r:*")
    except tarfile.TarError as err:
        raise InvalidArchive(f"not a tar archive: {err}") from None
    with tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        loaded = []
        if "manifest.json" in members:
            for item in _json(tar, members, "manifest.json"):
                loaded.append(_load_docker(store, tar, members, item))
        elif "index.json" in members:
            for manifest, tags in _oci_manifests(tar, members):
                loaded.append(_load_manifest(store, tar, members, manifest, tags))
        else:
            raise InvalidArchive("neither a docker save archive (manifest.json) nor an OCI layout")
    return loaded


def _json(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> Any:
    member = members.get(name)
    if member is None:
        raise InvalidArchive(f"{name!r} is missing from the archive")
    handle = tar.extractfile(member)
    assert handle is not None
    try:
        return json.loads(handle.read(4 << 20))
    except ValueError as err:
        raise InvalidArchive(f"{name!r} is not JSON: {err}") from None


def _oci_manifests(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]
) -> Iterator[tuple[Descriptor, list[Reference]]]:
    raw = json.dumps(_json(tar, members, "index.json")).encode()
    index = parse_manifest(raw, OCI_INDEX)
    assert isinstance(index, Index)
    by_digest: dict[str, tuple[Descriptor, list[Reference]]] = {}
    for desc in index.manifests:
        annotations = dict(desc.annotations)
        name = annotations.get(CONTAINERD_NAME) or ""
        tags = [parse(name)] if name and ":" in name.rsplit("/", 1)[-1] else []
        if desc.media_type == OCI_INDEX or "manifests" in str(desc.media_type):
            nested = parse_manifest(_blob(tar, members, desc.digest), desc.media_type)
            assert isinstance(nested, Index)
            desc = select_manifest(nested, host_platform(), name or desc.digest)
        known = by_digest.setdefault(desc.digest, (desc, []))
        known[1].extend(tags)
    yield from by_digest.values()


def _blob(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], digest: str) -> bytes:
    member = members.get(f"blobs/sha256/{digest_hex(digest)}")
    if member is None:
        raise InvalidArchive(f"blob {digest} is missing from the archive")
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _member_blob(
    store: LayeredImages,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    media_type: str,
    digest: str | None = None,
) -> tuple[Descriptor, Path]:
    """Put a member in the blob store (hashing it first when its digest is unknown)."""
    if digest is None:
        handle = tar.extractfile(member)
        assert handle is not None
        hasher = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
        digest = "sha256:" + hasher.hexdigest()
    desc = Descriptor(media_type, digest, member.size)

    @contextlib.contextmanager
    def source() -> Iterator[Iterator[bytes]]:
        handle = tar.extractfile(member)
        assert handle is not None
        yield iter(lambda: handle.read(1 << 20), b"")

    return desc, store.blobs.fetch(desc, source)


def _load_docker(
    store: LayeredImages, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], item: Any
) -> LayeredImage:
    if not isinstance(item, dict) or "Config" not in item or "Layers" not in item:
        raise InvalidArchive("manifest.json: an entry without Config or Layers")
    config_name = str(item["Config"])
    if config_name not in members:
        raise InvalidArchive(f"{config_name!r} is missing from the archive")
    config_desc, _ = _member_blob(store, tar, members[config_name], OCI_CONFIG)
    layers = []
    for name in item["Layers"]:
        member = members.get(str(name))
        if member is None:
            raise InvalidArchive(f"layer {name!r} is missing from the archive")
        handle = tar.extractfile(member)
        assert handle is not None
        gz = handle.read(2) == b"\x1f\x8b"
        desc, _ = _member_blob(store, tar, member, DOCKER_LAYER_GZIP if gz else OCI_LAYER)
        layers.append(desc)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_desc.digest, "size": config_desc.size},
        "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in layers],
    }
    raw = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    store.blobs.put(Descriptor(OCI_MANIFEST, digest, len(raw)), raw)
    tags = [parse(str(t)) for t in item.get("RepoTags") or ()]
    return _record(store, digest, parse_manifest(raw, OCI_MANIFEST), tags)


def _load_manifest(
    store: LayeredImages,
    tar: tarfile.TarFile,
    members: dict[str, tarfile.TarInfo],
    desc: Descriptor,
    tags: list[Reference],
) -> LayeredImage:
    raw = _blob(tar, members, desc.digest)
    store.blobs.put(Descriptor(desc.media_type, desc.digest, len(raw)), raw)
    manifest = parse_manifest(raw, desc.media_type)
    if not isinstance(manifest, Manifest):
        raise InvalidArchive(f"{desc.digest}: an index where a manifest should be")
    for blob in (manifest.config, *manifest.layers):
        member = members.get(f"blobs/sha256/{digest_hex(blob.digest)}")
        if member is None:
            raise InvalidArchive(f"blob {blob.digest} is missing from the archive")
        _member_blob(store, tar, member, blob.media_type, blob.digest)
    return _record(store, desc.digest, manifest, tags)


def _record(
    store: LayeredImages, digest: str, manifest: Manifest | Index, tags: list[Reference]
) -> LayeredImage:
    assert isinstance(manifest, Manifest)
    config = parse_config(store.blobs.read(manifest.config.digest))
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidArchive("the config's diff ids do not match the layers")
    for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
        store.layers.unpack(store.blobs.path(layer.digest), layer.media_type, diff_id)
    found = store.record(manifest.config.digest, digest, config.diff_ids, manifest, tags)
    # What this archive named the image (``Loaded image: …``), not every tag it has here.
    return replace(found, tags=tuple(dict.fromkeys(t.familiar() for t in tags if t.tag)))
