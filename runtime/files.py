"""``FileVerbs``: the file verbs of ``Runtime``, as a base class of the facade.

    archive_stat, archive_read, archive_extract   docker cp (runtime/archive.py; of a
                                                  created or exited container:
                                                  runtime/offline.py)
    changes, export                               docker diff, export (runtime/changes.py)
    commit                                        docker commit: the exported root
                                                  imported as a new image

Each is a one-line hand-over like the facade's own methods; they sit in a
class of their own only so that runtime/runtime.py stays a readable size.
It needs of the facade: ``get``, ``images``, ``lifecycle``, ``events``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from runtime import archive, changes, offline
from runtime.images import Image
from runtime.records import RUNNING
from runtime.reports import container_event

if TYPE_CHECKING:
    from runtime.events import EventLog
    from runtime.images import ImageStore
    from runtime.lifecycle import Lifecycle
    from runtime.records import ContainerRecord


class FileVerbs:
    images: ImageStore
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

    def commit(self, ref: str, name: str, pause: bool = True) -> Image:
        """A new image ``name`` of the container's root as it is now (the
        image store's import of its export: images are whole root
        filesystems, without config).  A running container is paused
        meanwhile unless ``pause`` is false or it is paused already."""
        record = self.get(ref)
        layer = changes.Layer.of(record)  # the host image: 409 before anything
        freeze = pause and record.status == RUNNING and not self.lifecycle.paused(record)
        if freeze:
            self.lifecycle.pause(record.id)
        try:
            image = self.images.import_archive(name, layer.export())
        finally:
            if freeze:
                self.lifecycle.unpause(record.id)
        self.events.publish(container_event("commit", record, comment=image.name))
        return image
