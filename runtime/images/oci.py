"""The OCI image format's documents, parsed into frozen dataclasses.

media types       the manifest, index, config and layer types we accept
Digest helpers    ``check_digest`` (only sha256, as every registry serves)
Descriptor        what points at a blob: media type, digest, size, platform
Manifest          one image: a config descriptor and its layers, bottom first
Index             a list of manifests, one per platform (Docker: manifest list)
ImageConfig       what the image says about running it: Entrypoint, Cmd, Env, …
Platform          os/architecture/variant; ``host_platform()``, ``select_manifest()``

Specs: https://github.com/opencontainers/image-spec (manifest.md, image-index.md,
config.md, descriptor.md) and Docker's image manifest v2 schema 2
(distribution's docs/spec/manifest-v2-2.md), which has the same shape under
other media types.  Parsing is strict where a mistake would be silent
(digests, sizes, media types) and lenient elsewhere (unknown fields are
ignored, as the specs ask).
"""

from __future__ import annotations

import json
import platform as _platform
import re
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidArgument, NotFound

# -- media types ----------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated by image-spec 1.1 but still served by older registries.
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
# Layer media type → its compression ("" for a plain tar).
LAYER_COMPRESSION = {
    OCI_LAYER: "",
    OCI_LAYER_NONDIST: "",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
}
# What a registry is asked for (the Accept header of a manifest GET), best first.
ACCEPTED_MANIFEST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def check_digest(value: object, what: str = "digest") -> str:
    """``value`` if it is ``sha256:<64 lowercase hex>``; ``InvalidArgument`` otherwise.

    descriptor.md allows other algorithms, but sha256 is the one every registry
    and tool uses, and the only one we can verify without a new dependency.
    """
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidArgument(what, f"{value!r} is not a sha256 digest")
    return value


def digest_hex(digest: str) -> str:
    return check_digest(digest).removeprefix("sha256:")


# -- platforms --------------------------------------------------------------
@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        variant = f"/{self.variant}" if self.variant else ""
        return f"{self.os}/{self.architecture}{variant}"


# uname -m → (GOARCH, variant): image-spec's platform values are Go's.
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


def host_platform(machine: str | None = None) -> Platform:
    arch, variant = _MACHINES.get(machine or _platform.machine(), (machine or "", ""))
    return Platform(os="linux", architecture=arch, variant=variant)


def _variant_rank(wanted: Platform, offered: Platform) -> int | None:
    """How well ``offered`` suits ``wanted`` (0 best), or None if it cannot run.

    containerd's platforms matcher: an arm64 image without a variant is v8; an
    armv7 host runs v7, then v6, then v5 images (older ARM code runs on newer
    cores, not the other way round); elsewhere the variant must match, an
    empty one matching the architecture's baseline.
    """
    if offered.os != wanted.os or offered.architecture != wanted.architecture:
        return None
    have = offered.variant or ("v8" if offered.architecture == "arm64" else "")
    want = wanted.variant or ("v8" if wanted.architecture == "arm64" else "")
    if have == want:
        return 0
    if wanted.architecture == "arm" and want.startswith("v") and have.startswith("v"):
        try:
            gap = int(want[1:]) - int(have[1:])
        except ValueError:
            return None
        return gap if gap > 0 else None
    if wanted.architecture == "amd64" and {have, want} <= {"", "v1"}:
        return 0
    return None


# -- documents --------------------------------------------------------------
@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageHealthcheck:
    """The config's ``Healthcheck`` (Docker's HEALTHCHECK) as the image has it:
    ``test`` is ``["CMD", argv...]``, ``["CMD-SHELL", command]`` or
    ``["NONE"]``; durations in nanoseconds, zero for Docker's default."""

    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0

    def to_json(self) -> dict[str, object]:
        """The config's ``Healthcheck`` object, as Docker writes and shows it."""
        return {
            "Test": list(self.test),
            "Interval": self.interval_ns,
            "Timeout": self.timeout_ns,
            "StartPeriod": self.start_period_ns,
            "StartInterval": self.start_interval_ns,
            "Retries": self.retries,
        }


@dataclass(frozen=True)
class ImageConfig:
    """config.md's ``config`` object, plus the fields a pull checks (os, arch, diff ids)
    and Docker's top-level ``author``, ``comment``, ``parent``."""

    architecture: str = ""
    os: str = ""
    variant: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    stop_signal: str = ""
    healthcheck: ImageHealthcheck | None = None
    diff_ids: tuple[str, ...] = ()
    #: Docker's top-level ``author``, ``comment`` and ``parent`` (the image a
    #: commit was made from), as ``docker commit``/``import`` write them.
    author: str = ""
    comment: str = ""
    parent: str = ""


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgument(what, f"not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(what, "not a JSON object")
    return doc


def _descriptor(raw: object, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise InvalidArgument(what, "a descriptor must be an object")
    media_type = raw.get("mediaType")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidArgument(what, "a descriptor has no mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(what, f"size {size!r} is not a non-negative integer")
    plat = raw.get("platform")
    platform = None
    if isinstance(plat, dict):
        platform = Platform(
            os=str(plat.get("os", "")),
            architecture=str(plat.get("architecture", "")),
            variant=str(plat.get("variant", "") or ""),
        )
    urls = raw.get("urls") or ()
    notes = raw.get("annotations") or {}
    return Descriptor(
        media_type=media_type,
        digest=check_digest(raw.get("digest"), f"{what} digest"),
        size=size,
        platform=platform,
        urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
        annotations=tuple(sorted((str(k), str(v)) for k, v in notes.items()))
        if isinstance(notes, dict)
        else (),
    )


def parse_manifest(data: bytes, content_type: str) -> Manifest | Index:
    """A manifest or an index, by the ``Content-Type`` the registry sent.

    A registry that sends a generic type (``application/json``) is forgiven
    when the document's own ``mediaType`` names a supported one.
    """
    doc = _load(data, "manifest")
    media_type = content_type.split(";")[0].strip()
    if media_type not in MANIFEST_TYPES | INDEX_TYPES:
        inner = doc.get("mediaType")
        if isinstance(inner, str) and inner in MANIFEST_TYPES | INDEX_TYPES:
            media_type = inner
        elif "manifests" in doc:
            media_type = OCI_INDEX
        elif "layers" in doc and "config" in doc:
            media_type = OCI_MANIFEST
        else:
            raise InvalidArgument(
                "manifest",
                f"unsupported media type {content_type!r} "
                "(only OCI and Docker v2 schema 2 images are supported)",
            )
    if media_type in INDEX_TYPES:
        raw = doc.get("manifests")
        if not isinstance(raw, list):
            raise InvalidArgument("manifest", "an index without a manifests list")
        return Index(media_type, tuple(_descriptor(m, "manifests") for m in raw))
    config = _descriptor(doc.get("config"), "config")
    if config.media_type not in CONFIG_TYPES:
        raise InvalidArgument(
            "config", f"unsupported media type {config.media_type!r} (not a container image)"
        )
    raw_layers = doc.get("layers")
    if not isinstance(raw_layers, list):
        raise InvalidArgument("manifest", "a manifest without a layers list")
    layers = tuple(_descriptor(layer, "layers") for layer in raw_layers)
    for layer in layers:
        if layer.media_type not in LAYER_COMPRESSION:
            raise InvalidArgument("layers", f"unsupported layer media type {layer.media_type!r}")
    return Manifest(media_type, config, layers)


def select_manifest(index: Index, wanted: Platform, ref: str) -> Descriptor:
    """The index entry to pull for ``wanted``: the best variant, first in the list on ties."""
    best: tuple[int, int, Descriptor] | None = None
    for position, entry in enumerate(index.manifests):
        if entry.platform is None or entry.media_type not in MANIFEST_TYPES:
            continue  # e.g. attestation manifests (platform unknown/unknown)
        rank = _variant_rank(wanted, entry.platform)
        if rank is not None and (best is None or (rank, position) < best[:2]):
            best = (rank, position, entry)
    if best is None:
        offered = ", ".join(str(m.platform) for m in index.manifests if m.platform) or "none"
        raise NotFound(f"manifest for {wanted} (the image has: {offered})", ref)
    return best[2]


def _strings(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)  # Docker accepts a bare string for Entrypoint/Cmd
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    raise InvalidArgument("config", f"expected a list of strings, got {value!r}")


def _keys(value: object) -> tuple[str, ...]:
    return tuple(sorted(str(k) for k in value)) if isinstance(value, dict) else ()


def _healthcheck(value: object) -> ImageHealthcheck | None:
    if not isinstance(value, dict) or not value.get("Test"):
        return None
    test = value["Test"]
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidArgument("config", f"Healthcheck.Test {test!r} is not a list of strings")
    numbers = {}
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        number = value.get(key) or 0
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise InvalidArgument("config", f"Healthcheck.{key} {number!r} is not an integer >= 0")
        numbers[key] = number
    return ImageHealthcheck(
        test=tuple(test),
        interval_ns=numbers["Interval"],
        timeout_ns=numbers["Timeout"],
        start_period_ns=numbers["StartPeriod"],
        start_interval_ns=numbers["StartInterval"],
        retries=numbers["Retries"],
    )


def parse_config(data: bytes) -> ImageConfig:
    doc = _load(data, "config")
    conf = doc.get("config") or {}
    if not isinstance(conf, dict):
        raise InvalidArgument("config", "'config' is not an object")
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    labels = conf.get("Labels") or {}
    return ImageConfig(
        architecture=str(doc.get("architecture", "")),
        os=str(doc.get("os", "")),
        variant=str(doc.get("variant", "") or ""),
        entrypoint=_strings(conf.get("Entrypoint")),
        cmd=_strings(conf.get("Cmd")),
        env=_strings(conf.get("Env")) or (),
        working_dir=str(conf.get("WorkingDir") or ""),
        user=str(conf.get("User") or ""),
        exposed_ports=_keys(conf.get("ExposedPorts")),
        volumes=_keys(conf.get("Volumes")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        stop_signal=str(conf.get("StopSignal") or ""),
        healthcheck=_healthcheck(conf.get("Healthcheck")),
        diff_ids=tuple(check_digest(d, "rootfs.diff_ids") for d in diff_ids or ()),
        author=str(doc.get("author") or ""),
        comment=str(doc.get("comment") or ""),
        parent=str(doc.get("parent") or ""),
    )
