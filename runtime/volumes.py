"""Volumes: named directories under the state dir that outlive containers.

    Volume           one volume as stored: name, data path, labels, created, anonymous
    VolumeStore      <state>/volumes/<name>/{_data/, volume.json}: create, get, list,
                     remove, prune; the mounts of a request resolved onto volumes
    volumes_from     the volume and bind mounts of other containers (``VolumesFrom``)

A volume is a directory, ``_data``, bound into containers like a bind mount
(the child clones it as it clones any bind source, runtime/rootfs.py); its
metadata sits beside it in ``volume.json``.  Both are made under a
``.new-<name>`` directory and renamed into place, and a removal renames to
``.trash-<name>`` before deleting, so a crash leaves either a whole volume or
a leftover that ``prepare`` clears at start-up.  Which containers use a volume
is read from the container records (their specs' mounts), not kept twice:
a volume in use by any container, running or not, cannot be removed (409),
as in Docker.

Anonymous volumes (``-v /path``, Docker's ``Volumes`` key) get a 64-hex name
and are removed with their container when asked (``DELETE ...?v=true``, and
always with ``auto_remove``).

With a user namespace (docs/security.md) container root is an unprivileged
host uid: an empty volume is handed to that uid when such a container mounts
it, so the container can write its volume as Docker's userns-remap allows;
a volume that already holds data keeps its owner.
"""

from __future__ import annotations

import builtins
import errno
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from runtime.errors import Conflict, InvalidArgument, NotFound, StorageFull
from runtime.events import EventLog, EventType, now_event
from runtime.options import LOCAL_DRIVER
from runtime.records import ContainerRecord
from runtime.spec import VOLUME_NAME_MAX, VOLUME_NAME_PATTERN, Mount
from runtime.timeutil import now_rfc3339
from runtime.volumecopy import copy_up

log = logging.getLogger("mydocker.volumes")

DATA = "_data"
META = "volume.json"
#: Docker labels anonymous volumes so; clients (and prune) read it.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass(frozen=True)
class Volume:
    name: str
    #: The data directory, what containers see at their mount's target.
    path: str
    created_at: str
    labels: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False


def check_name(name: str, field_name: str = "name") -> None:
    if not re.match(VOLUME_NAME_PATTERN, name) or len(name) > VOLUME_NAME_MAX:
        raise InvalidArgument(
            field_name,
            f"invalid volume name {name!r}: two to {VOLUME_NAME_MAX} of [a-zA-Z0-9_.-], "
            "starting with a letter or digit",
        )


class VolumeStore:
    """The volumes of one state dir.  ``users`` lists the container records
    (the runtime's), to tell which containers use a volume."""

    def __init__(
        self,
        root: str,
        users: Callable[[], Sequence[ContainerRecord]],
        events: EventLog | None = None,
    ) -> None:
        self.root = root
        self._records = users
        self._events = events
        # Creating and removing are short and rare: one lock keeps a remove
        # from racing a create of the same name.
        self._lock = threading.Lock()
        os.makedirs(root, mode=0o700, exist_ok=True)

    def prepare(self) -> None:
        """Clear what a crash left half-done (a create or a remove)."""
        for entry in os.listdir(self.root):
            if entry.startswith((".new-", ".trash-")):
                log.info("removing %s, left over from an interrupted create or remove", entry)
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)

    # -- one volume -------------------------------------------------------
    def create(
        self,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> tuple[Volume, bool]:
        """The volume ``name`` (a new anonymous one without), and whether it
        was made now; an existing volume is returned as it is, as Docker does."""
        anonymous = anonymous or name is None
        name = name if name is not None else secrets.token_hex(32)
        check_name(name)
        with self._lock:
            try:
                return self.get(name), False
            except NotFound:
                pass
            labels = dict(labels or {})
            if anonymous:
                labels.setdefault(ANONYMOUS_LABEL, "")
            volume = Volume(name, self._data(name), now_rfc3339(), labels, anonymous)
            meta = {"created_at": volume.created_at, "labels": labels, "anonymous": anonymous}
            self._make(name, meta)
        self._publish("create", volume)
        return volume, True

    def _make(self, name: str, meta: dict[str, object]) -> None:
        tmp = os.path.join(self.root, f".new-{name}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.mkdir(tmp, 0o700)
            # 0755 like Docker's _data: the container's users reach it, host users
            # cannot reach the state dir above it.
            os.mkdir(os.path.join(tmp, DATA), 0o755)
            with open(os.path.join(tmp, META), "w") as file:
                json.dump(meta, file)
                file.flush()
                os.fsync(file.fileno())
            os.rename(tmp, os.path.join(self.root, name))
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(self.root, err.strerror or "no space") from err
            raise

    def get(self, name: str) -> Volume:
        if not re.match(VOLUME_NAME_PATTERN, name) or len(name) > VOLUME_NAME_MAX:
            raise NotFound("volume", name)
        try:
            with open(os.path.join(self.root, name, META)) as file:
                meta = json.load(file)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("volume", name) from None
        return Volume(
            name,
            self._data(name),
            str(meta.get("created_at", "")),
            dict(meta.get("labels") or {}),
            bool(meta.get("anonymous")),
        )

    def list(self) -> list[Volume]:
        found = []
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith("."):
                continue
            try:
                found.append(self.get(entry))
            except NotFound:
                continue
        return found

    def users(self, name: str) -> builtins.list[ContainerRecord]:
        """The containers (any status) that mount volume ``name``."""
        return [r for r in self._records() if any(m.volume == name for m in r.spec.mounts)]

    def remove(self, name: str, force: bool = False) -> Volume:
        """Delete a volume and its data; 409 while a container uses it
        (``force`` does not override that: Docker's force only ignores a
        missing volume)."""
        with self._lock:
            volume = self.get(name)
            users = self.users(name)
            if users:
                names = ", ".join(r.name for r in users[:5])
                raise Conflict(
                    f"volume {name} is in use by {len(users)} container(s) ({names}); "
                    "remove them first"
                )
            trash = os.path.join(self.root, f".trash-{name}")
            os.rename(os.path.join(self.root, name), trash)
        shutil.rmtree(trash, ignore_errors=True)
        self._publish("destroy", volume)
        return volume

    def size(self, volume: Volume) -> int:
        """Bytes of the files in the volume (du's apparent size)."""
        total = 0
        for top, _dirs, files in os.walk(volume.path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(top, name)).st_size
                except OSError:
                    continue
        return total

    def prune(
        self, keep: Callable[[Volume], bool], all_named: bool = False
    ) -> builtins.list[tuple[Volume, int]]:
        """Remove the unused volumes ``keep`` does not keep: anonymous ones
        only unless ``all_named`` (Docker 23's ``all`` filter); each with the
        bytes it held."""
        removed: builtins.list[tuple[Volume, int]] = []
        for volume in self.list():
            if keep(volume) or not (volume.anonymous or all_named) or self.users(volume.name):
                continue
            size = self.size(volume)
            try:
                removed.append((self.remove(volume.name), size))
            except (Conflict, NotFound):
                continue  # taken into use, or removed, meanwhile
        return removed

    def remove_anonymous(self, mounts: Iterable[Mount]) -> None:
        """The anonymous volumes of a removed container, unless another uses them."""
        for mount in mounts:
            if mount.type != "volume" or mount.volume is None:
                continue
            try:
                if self.get(mount.volume).anonymous:
                    self.remove(mount.volume)
            except (Conflict, NotFound):
                continue

    # -- mounts -----------------------------------------------------------
    def resolve(self, mounts: Sequence[Mount]) -> tuple[tuple[Mount, ...], frozenset[str]]:
        """The request's mounts with each volume named (anonymous ones get a
        new name) and its data path as the source, and the new anonymous
        names; nothing is made yet."""
        result, anonymous, targets = [], set(), set()
        for index, mount in enumerate(mounts):
            if mount.target.rstrip("/") in targets:
                raise InvalidArgument(
                    f"mounts.{index}.target", f"duplicate mount point: {mount.target}"
                )
            targets.add(mount.target.rstrip("/"))
            if mount.type == "volume":
                name = mount.volume
                if name is None:
                    name = secrets.token_hex(32)
                    anonymous.add(name)
                check_name(name, f"mounts.{index}.source")
                mount = replace(mount, volume=name, source=self._data(name))
            result.append(mount)
        return tuple(result), frozenset(anonymous)

    def check_driver(self, mounts: Sequence[Mount], anonymous: frozenset[str], driver: str) -> None:
        """Only the ``local`` driver exists: a create whose ``volume_driver``
        names another fails as Docker's does without that plugin (404), but
        only if it would make a volume (moby daemon/create.go looks the
        driver up per new volume, not per container)."""
        if driver in ("", LOCAL_DRIVER):
            return
        for mount in mounts:
            name = mount.volume
            if mount.type == "volume" and name is not None:
                if name in anonymous or not os.path.isdir(os.path.join(self.root, name)):
                    raise NotFound("volume plugin", driver)

    def ensure(
        self,
        mounts: Sequence[Mount],
        anonymous: frozenset[str],
        owner: int | None,
        image_lowers: Sequence[str] = (),
    ) -> None:
        """Make the volumes ``mounts`` name that do not exist yet (Docker makes
        a named volume on first use), each filled with what the image has at
        its target (``image_lowers``: the image's layers, top first; the merged
        view is copied, runtime/volumecopy.py), as Docker copies it;
        with ``owner`` (a userns container's root) an empty volume is handed
        to it, so that root can write it."""
        for mount in mounts:
            if mount.type != "volume" or mount.volume is None:
                continue
            volume, made = self.create(mount.volume, anonymous=mount.volume in anonymous)
            if made and image_lowers:
                try:
                    copy_up(image_lowers, mount.target, volume.path)
                except OSError as err:  # the container still gets its (partly filled) volume
                    log.warning(
                        "copying the image's %s into volume %s: %s", mount.target, volume.name, err
                    )
            if owner is not None and not os.listdir(volume.path):
                os.chown(volume.path, owner, owner)

    def _publish(self, action: str, volume: Volume) -> None:
        if self._events is not None:
            self._events.publish(now_event(EventType.VOLUME, action, volume.name, volume.name))

    def _data(self, name: str) -> str:
        return os.path.join(self.root, name, DATA)


def volumes_from(
    refs: Sequence[str], resolve: Callable[[str], ContainerRecord]
) -> tuple[Mount, ...]:
    """The volume and bind mounts of the containers ``refs`` name
    (``ref[:ro|rw]``, Docker's ``VolumesFrom``), read-only with ``:ro``."""
    result: list[Mount] = []
    for index, item in enumerate(refs):
        ref, _, mode = item.partition(":")
        if mode not in ("", "ro", "rw") or not ref:
            raise InvalidArgument(f"volumes_from.{index}", f"{item!r}: container[:ro|rw]")
        source = resolve(ref)
        for mount in source.spec.mounts:
            if mount.type == "tmpfs":
                continue
            read_only = mount.read_only if not mode else mode == "ro"
            result.append(replace(mount, read_only=read_only))
    return tuple(result)
