"""``FileVerbs``: the file verbs of ``Runtime``, as a base class of the facade.

    archive_stat, archive_read, archive_extract   docker cp (runtime/archive.py; of a
                                                  created or exited container:
                                                  runtime/offline.py)
    changes, export                               docker diff, export (runtime/changes.py)
    commit                                        the native commit: the exported root
                                                  imported as a new image
    commit_image                                  docker commit: the exported root as a
                                                  new image with a config (the container's,
                                                  a body's, ``changes``), parent, history

Each is a one-line hand-over like the facade's own methods; they sit in a
class of their own only so that runtime/runtime.py stays a readable size.
It needs of the facade: ``get``, ``images``, ``imaging``, ``lifecycle``, ``events``.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import logging
import shlex
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from runtime import archive, changes, offline
from runtime.errors import InvalidState, NotFound, Unavailable
from runtime.images import Image
from runtime.images.building import BuildRequest
from runtime.images.oci import ImageConfig
from runtime.records import RUNNING
from runtime.reports import container_event

log = logging.getLogger("mydocker.files")

if TYPE_CHECKING:
    from runtime.events import EventLog
    from runtime.images import ImageStore
    from runtime.imaging import Imaging
    from runtime.lifecycle import Lifecycle
    from runtime.records import ContainerRecord


class FileVerbs:
    images: ImageStore
    imaging: Imaging
    lifecycle: Lifecycle
    events: EventLog

    def get(self, ref: str) -> ContainerRecord:
        raise NotImplementedError  # the facade's

    def archive_stat(self, ref: str, path: str) -> archive.PathStat:
        record = self.get(ref)
        if record.status != RUNNING:
            return offline.stat(record, path)
        return archive.stat_path(record, path)

    def archive_read(self, ref: str, path: str) -> tuple[archive.PathStat, Iterator[bytes]]:
        """The stat of ``path`` and a tar of it, streamed as it is read:
        through a running container's root, or from the files on disk of a
        created or exited one (runtime/offline.py)."""
        record = self.get(ref)
        if record.status != RUNNING:
            return offline.read(record, path)
        return archive.read_path(record, path)

    def archive_extract(
        self,
        ref: str,
        path: str,
        fileobj: IO[bytes],
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> int:
        """Unpack a tar into directory ``path``; how many members were written."""
        record = self.get(ref)
        if record.status != RUNNING:
            return offline.extract(record, path, fileobj, no_overwrite_dir_non_dir, copy_uid_gid)
        root = archive.Root.of(record)
        return archive.extract_in(root, path, fileobj, no_overwrite_dir_non_dir, copy_uid_gid)

    def changes(self, ref: str) -> builtins.list[changes.Change]:
        """What the container changed in its root: added, modified, deleted."""
        return changes.changes(self.get(ref))

    def export(self, ref: str) -> Iterator[bytes]:
        """Its root (image and writable layer, without mounts) as a tar stream."""
        return changes.export(self.get(ref))

    def commit_image(self, ref: str, request: BuildRequest) -> Image:
        """Docker's commit: the root as it is now, one layer; the config is the
        container's (its argv as Cmd, its Env, WorkingDir, Labels, and its
        image's other fields), the request's body and ``changes`` over it."""
        record = self.get(ref)
        layer = changes.Layer.of(record)  # the host image: 409 before anything
        spec = record.spec
        try:
            image: Image | None = self.images.get(spec.image_id or spec.image)
        except NotFound:
            image = None  # deleted since: the container's own config is enough
        config = (image.config if image else None) or ImageConfig()
        base = dataclasses.replace(
            config,
            cmd=spec.command,
            entrypoint=None,
            env=tuple(f"{key}={value}" for key, value in spec.env.items()),
            working_dir=spec.workdir or config.working_dir,
            labels=dict(spec.labels),
            parent=(image.id or "") if image else "",
        )
        build = self.imaging.begin_build(request, base, shlex.join(spec.command), "commit")
        with self._paused(record, request.pause):
            try:
                for chunk in layer.export():
                    build.write(chunk)
            except BaseException:
                build.abort()
                raise
        committed = build.finish()
        self.events.publish(container_event("commit", record, comment=committed.id or ""))
        return committed

    @contextlib.contextmanager
    def _paused(self, record: ContainerRecord, pause: bool) -> Iterator[None]:
        """A running container frozen meanwhile unless ``pause`` is false or it is paused."""
        freeze = pause and record.status == RUNNING and not self.lifecycle.paused(record)
        if freeze:
            try:
                self.lifecycle.pause(record.id)
            except (InvalidState, Unavailable) as err:
                # It exited meanwhile (its cgroup is gone): its root no longer
                # changes, so it is read as it is (what Docker does with a
                # container that is not running).
                log.info("commit of %s without a pause: %s", record.id, err)
                freeze = False
        try:
            yield
        finally:
            if freeze:
                self.lifecycle.unpause(record.id)

    def commit(self, ref: str, name: str, pause: bool = True) -> Image:
        """A new image ``name`` of the container's root as it is now (the
        image store's import of its export: images are whole root
        filesystems, without config).  A running container is paused
        meanwhile unless ``pause`` is false or it is paused already."""
        record = self.get(ref)
        layer = changes.Layer.of(record)  # the host image: 409 before anything
        with self._paused(record, pause):
            image = self.images.import_archive(name, layer.export())
        self.events.publish(container_event("commit", record, comment=image.name))
        return image
