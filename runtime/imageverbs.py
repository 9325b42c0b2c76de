"""``ImageVerbs``: the ``Runtime`` facade's image methods (a base class, as
``files.FileVerbs``): list, pull, tag, delete, prune, save, load and import,
handed to ``Imaging`` (runtime/imaging.py) and the ``ImageStore``."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import replace

from runtime.events import EventLog, EventType, now_event
from runtime.images import Image, ImageStore, ImportJob
from runtime.images.building import BuildRequest
from runtime.images.builtin import HOST
from runtime.images.hostview import HostView
from runtime.images.oci import ImageConfig
from runtime.images.pull import Progress
from runtime.images.registry import Credentials
from runtime.imaging import ImageBuild, Imaging, LoadJob, RemoteImage, Removal
from runtime.records import ContainerRecord


class ImageVerbs:
    images: ImageStore
    imaging: Imaging
    host_view: HostView
    events: EventLog

    def list_images(self) -> builtins.list[Image]:
        return [self._described(image) for image in self.images.list()]

    def get_image(self, ref: str) -> Image:
        return self._described(self.images.get(ref))

    def _described(self, image: Image) -> Image:
        if image.name != HOST:
            return image
        return replace(image, contents=tuple(self.host_view.contents()))

    def image_users(self, name: str) -> builtins.list[ContainerRecord]:
        """The containers (any status) whose root is built on image ``name``."""
        return self.imaging.users(self.images.get(name))

    def delete_image(self, ref: str, force: bool = False) -> builtins.list[Removal]:
        """Delete a tag, or an image no container (even exited) uses (runtime/imaging.py)."""
        return self.imaging.delete(ref, force)

    def pull_image(
        self,
        ref: str,
        credentials: Credentials | None = None,
        progress: Progress | None = None,
    ) -> Image:
        """Pull ``ref`` from its registry; ``progress`` hears of each layer's steps."""
        return self.imaging.pull(ref, credentials, progress)

    def tag_image(self, ref: str, tag: str) -> Image:
        return self.imaging.tag(ref, tag)

    def prune_images(self, dangling_only: bool = True) -> builtins.list[Removal]:
        return self.imaging.prune(dangling_only)

    def save_images(self, refs: builtins.list[str]) -> Iterator[bytes]:
        return self.imaging.save(refs)

    def begin_load(self) -> LoadJob:
        """Start loading a docker save / OCI layout tarball: ``write`` chunks, then ``finish``."""
        return self.imaging.begin_load()

    def resolve_remote(self, ref: str, credentials: Credentials | None = None) -> RemoteImage:
        return self.imaging.resolve_remote(ref, credentials)

    def begin_image_import(self, request: BuildRequest) -> ImageBuild:
        """Docker's import: a tar stream as a new image with a config (``changes``)."""
        return self.imaging.begin_build(request, ImageConfig(), "", "import")

    def begin_import(self, name: str) -> ImportJob:
        """Start importing a tar stream as image ``name``: ``write`` chunks, then ``finish``."""
        job = self.images.begin_import(name)
        job.on_finish = lambda image: self.events.publish(
            now_event(EventType.IMAGE, "import", image.name, image.name)
        )
        return job
