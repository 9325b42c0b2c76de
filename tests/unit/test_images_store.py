"""runtime.images.store: names, import, list, delete, leftovers, shifted copies."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime.errors import Conflict, InvalidArchive, InvalidArgument, NotFound, TooLarge
from runtime.images import ImageStore, normalize_name
from runtime.images.builtin import BUSYBOX_BINARY


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox", "busybox"),
        ("busybox:latest", "busybox"),
        ("library/busybox", "busybox"),
        ("docker.io/library/busybox:latest", "busybox"),
        ("index.docker.io/library/alpine", "alpine"),
        ("my-box_2.0", "my-box_2.0"),
        ("busybox:1.36", "busybox:1.36"),  # a tag of its own (an import as name:tag)
        ("docker.io/library/busybox:1.36", "busybox:1.36"),
    ],
)
def test_docker_references_normalise_to_store_names(ref: str, name: str) -> None:
    assert normalize_name(ref) == name


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "Busybox",
        "org/app",
        "busybox:-1.36",
        "busybox:",
        "../etc",
        ".hidden",
        "a" * 129,
        "x@sha256",
    ],
)
def test_what_is_no_store_name_is_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="not an image name"):
        normalize_name(ref)


#: The pulled images' dirs (runtime/images/layered.py), there from the start.
PULLED_DIRS = ["blobs", "catalog", "layers"]


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "images"), max_bytes=1 << 20)


def test_an_import_is_listed_after_host_and_can_be_deleted(store: ImageStore) -> None:
    image = store.import_archive(
        "docker.io/library/mybox:latest", chunks(rootfs_tar({"bin/x": b"hi"}))
    )
    assert (image.name, image.builtin, image.files, image.size_bytes) == ("mybox", False, 1, 2)
    assert image.rootfs is not None
    assert Path(image.rootfs, "bin/x").read_bytes() == b"hi"
    assert [i.name for i in store.list()] == ["host", "mybox"]
    assert store.get("mybox") == image
    store.delete("mybox")
    assert sorted(os.listdir(store.root)) == PULLED_DIRS
    with pytest.raises(NotFound, match="no such image: mybox"):
        store.get("mybox")


def test_host_is_builtin_and_has_no_files(store: ImageStore) -> None:
    host = store.get("host")
    assert (host.builtin, host.rootfs) == (True, None)


def test_names_in_use_and_bad_names_are_refused(store: ImageStore) -> None:
    store.import_archive("one", [rootfs_tar({"f": b""})])
    with pytest.raises(Conflict):
        store.begin_import("one")
    with pytest.raises(Conflict):
        store.begin_import("host")
    with pytest.raises(InvalidArgument) as err:
        store.begin_import("Not/A/Name")
    assert err.value.field == "name"


def test_a_refused_archive_leaves_nothing(store: ImageStore) -> None:
    with pytest.raises(InvalidArchive):
        store.import_archive("bad", [rootfs_tar({"../escape": b"x"})])
    with pytest.raises(TooLarge):
        store.import_archive("big", chunks(os.urandom(2 << 20), 1 << 16))
    assert sorted(os.listdir(store.root)) == PULLED_DIRS
    with pytest.raises(NotFound):
        store.get("bad")


def test_prepare_removes_what_a_crash_left(store: ImageStore) -> None:
    for leftover in (".import-abc", ".trash-def", ".userns-100000/.shift-x"):
        os.makedirs(os.path.join(store.root, leftover, "rootfs"))
    os.makedirs(os.path.join(store.root, "busybox"))  # pretend built: prepare keeps it
    with open(os.path.join(store.root, "busybox", "image.json"), "w") as f:
        f.write('{"builtin": true}')
    store.prepare()
    assert sorted(os.listdir(store.root)) == sorted([".userns-100000", "busybox", *PULLED_DIRS])
    assert os.listdir(os.path.join(store.root, ".userns-100000")) == []


@pytest.mark.skipif(not os.path.exists(BUSYBOX_BINARY), reason="needs busybox-static")
def test_prepare_builds_busybox_with_its_applets(store: ImageStore) -> None:
    store.prepare()
    busybox = store.get("busybox")
    assert busybox.builtin and busybox.rootfs is not None
    assert os.readlink(os.path.join(busybox.rootfs, "bin/sh")) == "/bin/busybox"
    assert os.access(os.path.join(busybox.rootfs, "bin/busybox"), os.X_OK)
    assert oct(os.stat(os.path.join(busybox.rootfs, "tmp")).st_mode & 0o7777) == "0o1777"


@pytest.mark.root
def test_a_shifted_copy_moves_ids_and_keeps_modes(store: ImageStore) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, uid, mode in (
            ("su", tarfile.REGTYPE, 0, 0o4755),
            ("home", tarfile.REGTYPE, 1000, 0o700),
            ("nobody", tarfile.REGTYPE, 70000, 0o644),
            ("ro", tarfile.DIRTYPE, 0, 0o555),
            ("ro/deep", tarfile.DIRTYPE, 2, 0o750),
            ("ro/deep/file", tarfile.REGTYPE, 2, 0o600),
            ("ro/link", tarfile.SYMTYPE, 3, 0o777),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid, info.mode = kind, uid, uid, mode
            info.linkname = "deep/file" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b""))
    store.import_archive("ids", [buffer.getvalue()])
    shifted = store.shifted_rootfs("ids", 100000, 65536)
    assert store.shifted_rootfs("ids", 100000, 65536) == shifted  # made once
    names = ("su", "home", "nobody", "ro", "ro/deep", "ro/deep/file")
    owners = {n: os.lstat(os.path.join(shifted, n)) for n in names}
    assert {n: (st.st_uid, st.st_gid, st.st_mode & 0o7777) for n, st in owners.items()} == {
        "su": (100000, 100000, 0o4755),
        "home": (101000, 101000, 0o700),
        "nobody": (70000, 70000, 0o644),
        "ro": (100000, 100000, 0o555),
        "ro/deep": (100002, 100002, 0o750),
        "ro/deep/file": (100002, 100002, 0o600),
    }
    link = os.path.join(shifted, "ro/link")
    assert (os.readlink(link), os.lstat(link).st_uid) == ("deep/file", 100003)
    store.delete("ids")
    assert os.listdir(os.path.join(store.root, ".userns-100000")) == []


def test_big_imports_report_progress_in_the_log(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("runtime.images.store._PROGRESS_STEP", 4000)
    caplog.set_level("INFO", logger="mydocker.images")
    store.import_archive("logged", chunks(rootfs_tar({"f": os.urandom(20_000)}), 1000))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("import logged: received 0 MiB") for m in messages), messages
    assert any(m.startswith("import logged: extracting") for m in messages)
    assert messages[-1] == "import logged: 1 files, 20000 bytes"


def test_an_import_may_carry_a_tag(store: ImageStore) -> None:
    one = store.import_archive("mybox:v1", [rootfs_tar({"v": b"1"})])
    two = store.import_archive("docker.io/library/mybox:v2", [rootfs_tar({"v": b"2"})])
    assert (one.name, one.tags, two.name) == ("mybox:v1", ("mybox:v1",), "mybox:v2")
    assert store.get("mybox:v1").rootfs == one.rootfs
    assert Path(str(store.get("library/mybox:v2").rootfs), "v").read_bytes() == b"2"
    with pytest.raises(NotFound):
        store.get("mybox")
    assert [i.name for i in store.list()] == ["host", "mybox:v1", "mybox:v2"]
    with pytest.raises(InvalidArgument):
        store.begin_import("mybox:-bad")
    store.delete("mybox:v1")
    with pytest.raises(NotFound):
        store.get("mybox:v1")
