"""``Imaging``: the runtime's image verbs that change the store.

    pull     a reference from its registry (or a mirror): layers fetched and
             unpacked once, the image recorded and tagged (runtime/images/layered.py)
    tag      another name for an image
    delete   a tag, or a whole image (``force`` for one with several tags);
             never an image a container (even an exited one) is built on
    prune    every dangling (untagged) pulled image no container uses
    save, load  docker save / OCI layout tarballs (runtime/images/archive.py)
    resolve_remote  what a registry has under a reference (Docker's /distribution)

Deletes hold the admission lock, which ``create`` holds from its last look at
the image until its record is in: no container slips onto an image being
deleted.  Credentials go to the registry client per call, never to a log, an
event or a record.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from runtime.errors import Conflict, Forbidden, InvalidArgument, TooLarge
from runtime.events import EventLog, EventType, now_event
from runtime.images import Image, ImageStore, archive
from runtime.images.pull import Progress
from runtime.images.reference import Reference, parse
from runtime.images.registry import Credentials, RegistryClient
from runtime.records import ContainerRecord, RecordStore

log = logging.getLogger("mydocker.images")

#: A registry that does not answer fails a pull within about this many seconds.
REGISTRY_TIMEOUT = 8.0


@dataclass(frozen=True)
class RegistryOptions:
    """The service's ``--insecure-registry`` and ``--registry-mirror`` options."""

    insecure_registries: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()

    def client(self) -> RegistryClient:
        return RegistryClient(
            insecure_registries=self.insecure_registries,
            mirrors=self.mirrors,
            timeout=REGISTRY_TIMEOUT,
        )


@dataclass(frozen=True)
class RemoteImage:
    """What a registry says of a reference, without pulling it (the platform's manifest)."""

    media_type: str
    digest: str
    size: int
    architecture: str
    os: str


@dataclass(frozen=True)
class Removal:
    """What a delete did, in Docker's words: ``Untagged`` a name, ``Deleted`` an id."""

    action: str
    what: str


class Imaging:
    def __init__(
        self,
        images: ImageStore,
        records: RecordStore,
        lock: Lock,
        events: EventLog,
        registry: RegistryOptions,
    ) -> None:
        self.images = images
        self.records = records
        self.lock = lock
        self.events = events
        self.registry = registry
        self._client: RegistryClient | None = None

    def client(self) -> RegistryClient:
        if self._client is None:
            self._client = self.registry.client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def pull(
        self,
        text: str,
        credentials: Credentials | None = None,
        progress: Progress | None = None,
    ) -> Image:
        ref = parse(text, field="reference")
        found = self.images.layered.pull(
            ref, self.client(), credentials=credentials, progress=progress
        )
        image = self.images.get(found.entry.id)
        self._event("pull", ref.familiar(), image)
        return image

    def resolve_remote(self, text: str, credentials: Credentials | None = None) -> RemoteImage:
        ref = parse(text, field="reference")
        found = self.client().resolve(
            ref, credentials=credentials, cached=self.images.layered.blobs.cached
        )
        return RemoteImage(
            media_type=found.manifest.media_type,
            digest=found.digest,
            size=len(found.manifest_bytes),
            architecture=found.config.architecture,
            os=found.config.os,
        )

    def tag(self, source: str, target: str) -> Image:
        image = self.images.get(source)
        ref = parse(target, field="tag")
        if ref.digest is not None or ref.tag is None:
            raise InvalidArgument("tag", f"{target!r}: a tag names no digest")
        if image.kind != "pulled" or image.id is None:
            raise InvalidArgument(
                "reference", f"{image.name} is {image.kind}: only pulled or loaded images take tags"
            )
        self.images.layered.tag(image.id, ref)
        self._event("tag", ref.familiar(), image)
        return self.images.get(image.id)

    def users(self, image: Image) -> list[ContainerRecord]:
        """The containers (any status) whose root is built on ``image``."""
        if image.id is not None:
            return [r for r in self.records.list() if r.spec.image_id == image.id]
        return [r for r in self.records.list() if r.spec.image == image.name]

    def delete(self, text: str, force: bool = False) -> list[Removal]:
        """Untag ``text`` if it is one of several tags; else delete the image."""
        with self.lock:
            image = self.images.get(text)
            if image.builtin:
                raise Forbidden(f"{image.name} is a built-in image and cannot be deleted")
            if image.kind != "pulled":
                self._check_unused(image)
                self.images.delete(image.name)
                self._event("delete", image.name, image)
                return [Removal("Untagged", image.tags[0]), Removal("Deleted", image.name)]
            assert image.id is not None
            named = _tag_named(text, image)
            if named is not None and len(image.tags) > 1:
                self.images.layered.untag(named)
                self._event("untag", named.familiar(), image)
                return [Removal("Untagged", named.familiar())]
            if named is None and len(image.tags) > 1 and not force:
                raise Conflict(
                    f"image {image.id[:19]} has several tags ({', '.join(image.tags)}): "
                    "delete them one by one, or force"
                )
            self._check_unused(image)
            untagged = self.images.layered.remove(image.id)
        self._event("delete", image.name, image)
        return [Removal("Untagged", t) for t in untagged] + [Removal("Deleted", image.id)]

    def save(self, refs: list[str]) -> Iterator[bytes]:
        """A ``docker save`` / OCI-layout tarball of pulled images, chunk by chunk."""
        found = []
        for text in refs:
            image = self.images.get(text)
            layered = self.images.layered.find(image.id or "") if image.id else None
            if layered is None:
                raise InvalidArgument(
                    "names",
                    f"{image.name} is {image.kind}: only pulled "
                    "or loaded images can be saved (export a container)",
                )
            found.append(layered)
        return archive.save(self.images.layered, found)

    def begin_load(self) -> LoadJob:
        return LoadJob(self)

    def load(self, path: Path) -> list[Image]:
        try:
            loaded = archive.load(self.images.layered, path)
        except BaseException:
            self.images.layered.collect()  # what the load stored and no image names
            raise
        images = [self.images.get(found.entry.id) for found in loaded]
        for image in images:
            self._event("load", image.name, image)
        return images

    def prune(self) -> list[Removal]:
        """Delete the dangling pulled images that no container uses."""
        removed: list[Removal] = []
        with self.lock:
            for entry in self.images.layered.dangling():
                image = self.images.get(entry.id)
                if not self.users(image):
                    self.images.layered.remove(entry.id)
                    removed.append(Removal("Deleted", entry.id))
            self.images.layered.collect()
        return removed

    def _check_unused(self, image: Image) -> None:
        users = self.users(image)
        if users:
            names = ", ".join(r.name for r in users[:5])
            raise Conflict(
                f"image {image.name} is used by {len(users)} container(s) ({names}); "
                "delete them first"
            )

    def _event(self, action: str, name: str, image: Image) -> None:
        self.events.publish(now_event(EventType.IMAGE, action, image.id or image.name, name))


class LoadJob:
    """A load: the body is spooled to ``<images>/.load-XXXX/archive``, then read."""

    def __init__(self, imaging: Imaging) -> None:
        self.imaging = imaging
        self.staging = Path(tempfile.mkdtemp(prefix=".load-", dir=imaging.images.root))
        self._file = (self.staging / "archive").open("wb")
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.imaging.images.max_bytes:
            self.abort()
            raise TooLarge(f"the archive is larger than the cap of {self.imaging.images.max_bytes}")
        self._file.write(chunk)

    def finish(self) -> list[Image]:
        try:
            self._file.close()
            return self.imaging.load(self.staging / "archive")
        finally:
            self.abort()

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def _tag_named(text: str, image: Image) -> Reference | None:
    """The tag ``text`` names, if it names one of the image's tags (not its id or a digest)."""
    try:
        ref = parse(text)
    except InvalidArgument:
        return None
    if ref.digest is not None or ref.familiar() not in image.tags:
        return None
    return ref
