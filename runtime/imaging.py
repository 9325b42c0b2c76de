"""``Imaging``: the runtime's image verbs that change the store.

    pull     a reference from its registry (or a mirror): layers fetched and
             unpacked once, the image recorded and tagged (runtime/images/layered.py)
    tag      another name for an image
    delete   a tag, or a whole image (``force`` for one with several tags);
             never an image a container (even an exited one) is built on
    prune    every dangling (untagged) pulled image no container uses
    save, load  docker save / OCI layout tarballs (runtime/images/archive.py)
    begin_build  docker import and commit: a root's tar as a new image with a
             config (runtime/images/building.py), ``changes`` applied
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Lock

from runtime.errors import Conflict, Forbidden, InvalidArgument, NotFound, TooLarge
from runtime.events import EventLog, EventType, now_event
from runtime.images import Image, ImageStore, archive
from runtime.images.building import BuildJob, BuildRequest, History, merge_config
from runtime.images.instructions import apply_changes
from runtime.images.layered import LayeredImage
from runtime.images.oci import ImageConfig
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
    """What a delete did, in Docker's words: ``Untagged`` a name, ``Deleted`` an id
    (``size``: the bytes a ``Deleted`` image took, what a prune reclaims)."""

    action: str
    what: str
    size: int = 0


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
        #: Called after each image event (runtime/warmpool.py).
        self.on_change: Callable[[], None] | None = None

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
        self.event("pull", ref.familiar(), image)
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
        self.event("tag", ref.familiar(), image)
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
                self.event("delete", image.name, image)
                return [Removal("Untagged", image.tags[0]), Removal("Deleted", image.name)]
            assert image.id is not None
            named = _tag_named(text, image)
            if named is not None and len(image.tags) > 1:
                self.images.layered.untag(named)
                self.event("untag", named.familiar(), image)
                return [Removal("Untagged", named.familiar())]
            if named is None and len(image.tags) > 1 and not force:
                raise Conflict(
                    f"image {image.id[:19]} has several tags ({', '.join(image.tags)}): "
                    "delete them one by one, or force"
                )
            self._check_unused(image)
            untagged = self.images.layered.remove(image.id)
        self.event("delete", image.name, image)
        return [Removal("Untagged", t) for t in untagged] + [Removal("Deleted", image.id)]

    def save(self, refs: list[str]) -> Iterator[bytes]:
        """A ``docker save`` / OCI-layout tarball, chunk by chunk: each image
        once, with the tags the refs name (an image named by id or digest
        carries no tag, as Docker saves it)."""
        chosen: dict[str, tuple[LayeredImage, list[str]]] = {}
        for text in refs:
            image = self.images.get(text)
            layered = self.images.layered.find(image.id or "") if image.id else None
            if layered is None:
                raise InvalidArgument(
                    "names",
                    f"{image.name} is {image.kind}: only pulled, loaded, imported "
                    "or committed images of the Docker API can be saved (export a container)",
                )
            _, tags = chosen.setdefault(layered.entry.id, (layered, []))
            named = _tag_named(text, image)
            if named is not None and named.familiar() not in tags:
                tags.append(named.familiar())
        found = [replace(layered, tags=tuple(tags)) for layered, tags in chosen.values()]
        return archive.save(self.images.layered, found)

    def begin_load(self) -> LoadJob:
        return LoadJob(self)

    def begin_build(
        self, request: BuildRequest, base: ImageConfig, created_by: str, action: str
    ) -> ImageBuild:
        """An import or commit: the name and changes are checked before any byte is read."""
        ref = parse(request.ref, field="repo") if request.ref else None
        if ref is not None and ref.tag is None:
            raise InvalidArgument("repo", f"{request.ref!r}: a new image takes a tag, not a digest")
        if ref is not None:
            self._check_not_flat(ref)
        config = apply_changes(merge_config(request.config, base), request.changes)
        config = replace(config, author=request.author, comment=request.comment)
        history = History(created_by, request.author, request.comment)
        job = BuildJob(self.images.layered, self.images.max_bytes)
        return ImageBuild(self, job, config, ref, history, action)

    def load(self, path: Path) -> list[Image]:
        try:
            loaded = archive.load(self.images.layered, path)
        except BaseException:
            self.images.layered.collect()  # what the load stored and no image names
            raise
        # Each with the tags its archive gave it: what ``Loaded image: …`` lists.
        images = [replace(self.images.get(f.entry.id), tags=f.tags) for f in loaded]
        for image in images:
            self.event("load", image.name, image)
        return images

    def prune(self, dangling_only: bool = True) -> list[Removal]:
        """Delete the dangling pulled images that no container uses; with
        ``dangling_only`` false, every image no container uses (``docker
        image prune -a``), built-in ones excepted."""
        removed: list[Removal] = []
        with self.lock:
            entries = self.images.layered.catalog.entries()
            if dangling_only:
                entries = self.images.layered.dangling()
            for entry in entries:
                image = self.images.get(entry.id)
                if not self.users(image):
                    untagged = self.images.layered.remove(entry.id)
                    removed += [Removal("Untagged", t) for t in untagged]
                    removed.append(Removal("Deleted", entry.id, entry.size_bytes))
            for image in [] if dangling_only else self.images.list():
                if image.kind == "imported" and not image.builtin and not self.users(image):
                    self.images.delete(image.name)
                    removed += [Removal("Untagged", image.tags[0])]
                    removed.append(Removal("Deleted", image.name, image.size_bytes or 0))
            self.images.layered.collect()
        for gone in (r.what for r in removed if r.action == "Deleted"):
            self.events.publish(now_event(EventType.IMAGE, "delete", gone, gone))
        if removed and self.on_change is not None:
            self.on_change()
        return removed

    def _check_not_flat(self, ref: Reference) -> None:
        """A built-in or natively imported image of that name would hide the new one's tag."""
        try:
            found = self.images.get(ref.familiar())
        except NotFound:
            return
        if found.kind != "pulled":
            raise Conflict(
                f"an image named {ref.familiar()!r} exists already ({found.kind}): "
                "give the new one another name"
            )

    def _check_unused(self, image: Image) -> None:
        users = self.users(image)
        if users:
            names = ", ".join(r.name for r in users[:5])
            raise Conflict(
                f"image {image.name} is used by {len(users)} container(s) ({names}); "
                "delete them first"
            )

    def event(self, action: str, name: str, image: Image) -> None:
        self.events.publish(now_event(EventType.IMAGE, action, image.id or image.name, name))
        if self.on_change is not None:
            self.on_change()


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


@dataclass(frozen=True)
class ImageBuild:
    """An import or commit under way: ``write`` the root's tar, then ``finish``."""

    imaging: Imaging
    job: BuildJob
    config: ImageConfig
    ref: Reference | None
    history: History
    action: str

    def write(self, chunk: bytes) -> None:
        self.job.write(chunk)

    def finish(self) -> Image:
        found = self.job.finish(self.config, self.ref, self.history)
        image = self.imaging.images.get(found.entry.id)
        name = self.ref.familiar() if self.ref is not None else found.entry.id
        self.imaging.event(self.action, name, image)
        return image

    def abort(self) -> None:
        self.job.abort()


def _tag_named(text: str, image: Image) -> Reference | None:
    """The tag ``text`` names, if it names one of the image's tags (not its id or a digest)."""
    try:
        ref = parse(text)
    except InvalidArgument:
        return None
    if ref.digest is not None or ref.familiar() not in image.tags:
        return None
    return ref
