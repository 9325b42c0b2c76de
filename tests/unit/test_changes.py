"""runtime/changes.py on a hand-made lower and upper dir: kinds, whiteouts,
opaque directories, skipped mount points, and the merged export."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime.changes import Change, Kind, Layer
from runtime.errors import InvalidArgument, NotFound


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path]:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "home/user", "proc", "dev", "abs"):
        (lower / d).mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "etc" / "group").write_text("root\n")
    (lower / "home" / "user" / "old").write_text("old\n")
    (lower / "link").symlink_to("/etc")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("root\nme\n")
    (upper / "new").write_text("new\n")
    (upper / "dev").mkdir()
    (upper / "dev" / "null").write_text("")  # a mount point's leftover
    try:
        os.mknod(upper / "etc" / "group", 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
        (upper / "home").mkdir()
        os.setxattr(upper / "home", "trusted.overlay.opaque", b"y")
    except PermissionError:
        pytest.skip("whiteouts and trusted xattrs need root")
    (upper / "home" / "fresh").write_text("fresh\n")
    return lower, upper


def test_changes(layers: tuple[Path, Path]) -> None:
    lower, upper = layers
    assert Layer(str(upper), str(lower)).changes() == [
        Change("/etc", Kind.modified),
        Change("/etc/group", Kind.deleted),
        Change("/etc/passwd", Kind.modified),
        Change("/home", Kind.modified),
        Change("/home/fresh", Kind.added),
        Change("/new", Kind.added),
    ]


def test_a_directory_copied_up_for_mount_points_alone_is_no_change(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    for stub in ("hosts", "hostname", "resolv.conf"):  # bind targets the runtime made
        (upper / "etc" / stub).write_text("")
    (upper / "test").write_text("")
    assert Layer(str(upper), str(lower)).changes() == [Change("/test", Kind.added)]
    (upper / "etc" / "motd").write_text("mine\n")
    assert Layer(str(upper), str(lower)).changes() == [
        Change("/etc", Kind.modified),
        Change("/etc/motd", Kind.added),
        Change("/test", Kind.added),
    ]


def test_no_upper_dir_no_changes(layers: tuple[Path, Path]) -> None:
    lower, _ = layers
    assert Layer(None, str(lower)).changes() == []


def test_export_merges_the_layers(layers: tuple[Path, Path]) -> None:
    lower, upper = layers
    data = b"".join(Layer(str(upper), str(lower)).export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read() == b"root\nme\n"
        assert tar.getmember("link").issym() and tar.getmember("link").linkname == "/etc"
    assert "etc/group" not in names  # whited out
    assert "home/user" not in names and "home/fresh" in names  # opaque
    assert {"new", "proc", "dev"} <= names
    assert "dev/null" not in names  # below a mount point of the runtime's


def test_export_maps_user_namespace_owners(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "f").write_text("x")
    try:
        os.chown(lower / "f", 100007, 100007)
    except PermissionError:
        pytest.skip("chown needs root")
    data = b"".join(Layer(None, str(lower), host_id=100000).export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert (tar.getmember("f").uid, tar.getmember("f").gid) == (7, 7)


def test_read_of_a_stopped_container_resolves_links_in_the_merged_root(
    layers: tuple[Path, Path],
) -> None:
    lower, upper = layers
    layer = Layer(str(upper), str(lower))
    (upper / "rel").symlink_to("etc/../etc")
    assert layer.resolve("/link/passwd") == ["etc", "passwd"]  # /link -> /etc, in the root
    assert layer.resolve("/../../rel/passwd") == ["etc", "passwd"]
    assert layer.resolve("/link") == ["link"] and layer.resolve("/link/") == ["etc"]
    with pytest.raises(NotFound):
        layer.resolve("/etc/group")  # whited out
    with pytest.raises(NotFound):
        layer.resolve("/home/user/old")  # below an opaque directory
    stat, chunks = layer.read("/etc")
    assert stat.name == "etc"
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert sorted(tar.getnames()) == ["etc", "etc/passwd"]
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read() == b"root\nme\n"
    assert layer.stat("/link").link_target == "/etc"


def test_a_link_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(InvalidArgument, match="too many levels"):
        Layer(None, str(tmp_path)).resolve("/a/x")


def test_a_layered_image_merges_its_layers_top_first(tmp_path: Path) -> None:
    base, top, upper = tmp_path / "base", tmp_path / "top", tmp_path / "upper"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "os").write_text("base\n")
    (base / "etc" / "gone").write_text("x\n")
    (base / "bin").mkdir()
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "os").write_text("top\n")
    upper.mkdir()
    try:
        os.mknod(top / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    except PermissionError:
        pytest.skip("whiteouts need root")
    (upper / "bin").mkdir()
    (upper / "bin" / "tool").write_text("t\n")
    layer = Layer(str(upper), (str(top), str(base)))
    assert layer.changes() == [Change("/bin", Kind.modified), Change("/bin/tool", Kind.added)]
    with tarfile.open(fileobj=io.BytesIO(b"".join(layer.export()))) as tar:
        names = set(tar.getnames())
        os_file = tar.extractfile("etc/os")
        assert os_file is not None and os_file.read() == b"top\n"
    assert {"etc", "etc/os", "bin", "bin/tool"} == names  # etc/gone whited out by top
    assert layer.resolve("/etc/os") == ["etc", "os"]
    with pytest.raises(NotFound):
        layer.resolve("/etc/gone")
