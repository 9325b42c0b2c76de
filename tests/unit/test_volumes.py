"""runtime/volumes.py: the store on a tmp dir, mounts resolved, volumes_from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.records import ContainerRecord
from runtime.spec import ContainerSpec, Mount, Status
from runtime.volumes import ANONYMOUS_LABEL, VolumeStore, volumes_from

ID = "a" * 64


def record(*mounts: Mount) -> ContainerRecord:
    spec = ContainerSpec(command=("true",), hostname="h", mounts=mounts)
    return ContainerRecord(
        id=ID, name="c", status=Status.exited, spec=spec, created_at="2026-01-01T00:00:00Z"
    )


@pytest.fixture
def users() -> list[ContainerRecord]:
    return []


@pytest.fixture
def store(tmp_path: Path, users: list[ContainerRecord]) -> VolumeStore:
    return VolumeStore(str(tmp_path / "volumes"), lambda: users)


def test_create_is_idempotent_and_anonymous_ones_are_labelled(store: VolumeStore) -> None:
    volume, made = store.create("data", {"a": "1"})
    assert made and os.path.isdir(volume.path) and volume.labels == {"a": "1"}
    again, made = store.create("data", {"other": "x"})
    assert not made and again == volume
    anonymous, _ = store.create()
    assert anonymous.anonymous and ANONYMOUS_LABEL in anonymous.labels
    assert [v.name for v in store.list()] == sorted(["data", anonymous.name])


def test_leftovers_of_a_crash_are_cleared(store: VolumeStore, tmp_path: Path) -> None:
    (tmp_path / "volumes" / ".new-x" / "_data").mkdir(parents=True)
    (tmp_path / "volumes" / ".trash-y").mkdir()
    assert store.list() == []
    store.prepare()
    assert os.listdir(tmp_path / "volumes") == []


def test_remove_refuses_a_volume_in_use(store: VolumeStore, users: list[ContainerRecord]) -> None:
    volume, _ = store.create("busy")
    users.append(record(Mount("volume", "/d", source=volume.path, volume="busy")))
    with pytest.raises(Conflict, match="in use by 1 container"):
        store.remove("busy")
    users.clear()
    store.remove("busy")
    with pytest.raises(NotFound):
        store.get("busy")


def test_resolve_names_anonymous_volumes_and_refuses_duplicate_targets(
    store: VolumeStore,
) -> None:
    mounts, anonymous = store.resolve(
        (Mount("volume", "/a", volume="named"), Mount("volume", "/b"), Mount("tmpfs", "/t"))
    )
    assert mounts[0].source == os.path.join(store.root, "named", "_data")
    assert mounts[1].volume in anonymous and len(anonymous) == 1
    assert mounts[2] == Mount("tmpfs", "/t")
    assert store.list() == []  # nothing made yet
    store.ensure(mounts, anonymous, owner=None)
    assert {v.name: v.anonymous for v in store.list()} == {"named": False, mounts[1].volume: True}
    with pytest.raises(InvalidArgument, match="duplicate mount point"):
        store.resolve((Mount("volume", "/a"), Mount("tmpfs", "/a/")))


def test_ensure_hands_an_empty_volume_to_a_userns_root(store: VolumeStore) -> None:
    mounts, anonymous = store.resolve((Mount("volume", "/a", volume="uu"),))
    store.ensure(mounts, anonymous, owner=100000)
    path = store.get("uu").path
    assert os.stat(path).st_uid == 100000
    os.chown(path, 0, 0)
    Path(path, "file").write_text("x")
    store.ensure(mounts, anonymous, owner=100000)
    assert os.stat(path).st_uid == 0  # it holds data: it keeps its owner


def test_remove_anonymous_keeps_named_ones(store: VolumeStore) -> None:
    mounts, anonymous = store.resolve((Mount("volume", "/a", volume="nn"), Mount("volume", "/b")))
    store.ensure(mounts, anonymous, owner=None)
    store.remove_anonymous(mounts)
    assert [v.name for v in store.list()] == ["nn"]


def test_volumes_from_copies_volume_and_bind_mounts() -> None:
    source = record(
        Mount("volume", "/v", source="/s/v/_data", volume="vv"),
        Mount("bind", "/b", source="/srv", read_only=True),
        Mount("tmpfs", "/t"),
    )
    assert volumes_from([ID], lambda ref: source) == source.spec.mounts[:2]
    read_only = volumes_from([f"{ID}:ro"], lambda ref: source)
    assert all(m.read_only for m in read_only)
    writable = volumes_from([f"{ID}:rw"], lambda ref: source)
    assert not any(m.read_only for m in writable)
    with pytest.raises(InvalidArgument, match="volumes_from.0"):
        volumes_from([f"{ID}:z"], lambda ref: source)


def test_a_new_volume_gets_the_images_files_but_never_through_a_symlink(
    store: VolumeStore, tmp_path: Path
) -> None:
    image = tmp_path / "image"
    (image / "etc" / "app").mkdir(parents=True)
    (image / "etc" / "app" / "conf").write_text("x=1\n")
    os.chown(image / "etc" / "app" / "conf", 1000, 1001)
    os.chmod(image / "etc" / "app", 0o750)
    (image / "etc" / "app" / "link").symlink_to("/etc/shadow")
    (image / "escape").symlink_to("/etc")
    mounts, anonymous = store.resolve(
        (
            Mount("volume", "/etc/app", volume="copied"),
            Mount("volume", "/escape", volume="escaped"),
            Mount("volume", "/missing", volume="empty"),
        )
    )
    store.ensure(mounts, anonymous, owner=None, image_lowers=(str(image),))
    copied = Path(store.get("copied").path)
    assert (copied / "conf").read_text() == "x=1\n"
    assert (os.stat(copied / "conf").st_uid, os.stat(copied / "conf").st_gid) == (1000, 1001)
    assert os.stat(copied).st_mode & 0o777 == 0o750
    assert os.readlink(copied / "link") == "/etc/shadow"  # kept as a link, not followed
    assert os.listdir(store.get("escaped").path) == []
    assert os.listdir(store.get("empty").path) == []
    # An existing volume is not filled again.
    (copied / "conf").unlink()
    store.ensure(mounts, anonymous, owner=None, image_lowers=(str(image),))
    assert not (copied / "conf").exists()


def test_a_driver_other_than_local_fails_only_for_a_volume_to_make(store: VolumeStore) -> None:
    store.create("there")
    existing = Mount("volume", "/a", source="/x", volume="there")
    new = Mount("volume", "/b", source="/y", volume="newone")
    store.check_driver([existing], frozenset(), "nfs")
    store.check_driver([new], frozenset(), "local")
    with pytest.raises(NotFound, match="volume plugin: nfs"):
        store.check_driver([existing, new], frozenset(), "nfs")
    with pytest.raises(NotFound):
        store.check_driver([existing], frozenset({"there"}), "nfs")  # anonymous: made now
