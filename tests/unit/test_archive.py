"""runtime/archive.py on a directory standing in for a container's root:
path resolution that never leaves the root, the tar it writes, and the
extraction that refuses every way out."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.archive import Root, base_name, clean
from runtime.errors import InvalidArchive, InvalidArgument, NotFound


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ is the container's; outside/ is the host's."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("container\n")
    outside.mkdir()
    (outside / "secret").write_text("host\n")
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../outside")
    (root / "hostlink").symlink_to(str(outside))
    return tmp_path


@pytest.fixture
def root(tree: Path) -> Iterator[Root]:
    fd = os.open(tree / "root", os.O_PATH | os.O_DIRECTORY)
    with Root(fd, "c", None) as r:
        yield r


def test_clean_and_base_name() -> None:
    assert clean("a/../../b") == "/b"
    assert clean("/x/.") == "/x/."
    assert base_name("/x/y/") == "y" and base_name("/x/.") == "." and base_name("/") == "/"
    with pytest.raises(InvalidArgument):
        clean("")


def test_links_resolve_inside_the_root(root: Root, tree: Path) -> None:
    assert root.stat("/abs/passwd").size == len("container\n")
    assert root.stat("/../../../etc/passwd").name == "passwd"
    # "../../outside" from the root stops at the root: no outside/ there.
    with pytest.raises(NotFound):
        root.stat("/up/secret")
    # An absolute link to the host's directory starts at the root too.
    with pytest.raises(NotFound):
        root.stat("/hostlink/secret")


def test_the_last_link_is_not_followed_unless_asked(root: Root) -> None:
    link = root.stat("/abs")
    assert link.link_target == "/etc"
    assert root.stat("/abs/").name == "abs" and not root.stat("/abs/").link_target


def _names(root: Root, path: str) -> dict[str, tarfile.TarInfo]:
    _, chunks = root.read(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_read_archives_links_as_links(tree: Path) -> None:
    fd = os.open(tree / "root", os.O_PATH | os.O_DIRECTORY)
    members = _names(Root(fd, "c", None), "/")  # read closes the root when done
    assert members["./hostlink"].issym()
    assert members["./etc/passwd"].size == len("container\n")
    assert not any("secret" in name for name in members)


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    buffer.seek(0)
    return buffer


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    "members",
    [
        [tarfile.TarInfo("../../outside/new")],
        [tarfile.TarInfo("hostlink/new")],
        [tarfile.TarInfo("abs/new")],
        [_link("l", "/"), tarfile.TarInfo("l/outside/new")],
        [_link("l", "../.."), tarfile.TarInfo("l/outside/new")],
    ],
    ids=["dotdot", "existing-host-link", "existing-abs-link", "new-abs-link", "new-rel-link"],
)
def test_extract_refuses_every_way_out(
    root: Root, tree: Path, members: list[tarfile.TarInfo]
) -> None:
    with pytest.raises(InvalidArchive):
        root.extract("/", _tar(*members))
    assert sorted(os.listdir(tree / "outside")) == ["secret"]


def test_extract_writes_files_dirs_and_links(root: Root, tree: Path) -> None:
    directory = tarfile.TarInfo("d")
    directory.type, directory.mode = tarfile.DIRTYPE, 0o750
    file = tarfile.TarInfo("d/f")
    file.mode, file.uid = 0o4755, 1000
    written = root.extract("/etc", _tar(directory, file, _link("d/l", "f"), data=b"hi"))
    assert written == 3
    base = tree / "root" / "etc" / "d"
    assert (base / "f").read_bytes() == b"hi"
    assert oct((base / "f").stat().st_mode & 0o7777) == oct(0o4755)
    assert (base / "f").stat().st_uid == 0  # the container's root unless copy_uid_gid
    assert os.readlink(base / "l") == "f"


def test_extract_replaces_a_link_instead_of_writing_through_it(root: Root, tree: Path) -> None:
    root.extract("/", _tar(tarfile.TarInfo("hostlink"), data=b"file now"))
    assert (tree / "root" / "hostlink").read_bytes() == b"file now"
    assert (tree / "outside" / "secret").read_text() == "host\n"


def test_extract_into_a_link_to_a_directory_stays_in_the_root(root: Root, tree: Path) -> None:
    root.extract("/abs", _tar(tarfile.TarInfo("new"), data=b"in etc"))
    assert (tree / "root" / "etc" / "new").read_bytes() == b"in etc"


def test_extract_refusals(root: Root) -> None:
    with pytest.raises(NotFound):
        root.extract("/nope", _tar(tarfile.TarInfo("a")))
    with pytest.raises(InvalidArgument, match="not a directory"):
        root.extract("/etc/passwd", _tar(tarfile.TarInfo("a")))
    with pytest.raises(InvalidArchive, match="not a tar"):
        root.extract("/etc", io.BytesIO(b"garbage" * 100))
    with pytest.raises(InvalidArchive, match="overwrite a directory"):
        root.extract("/", _tar(tarfile.TarInfo("etc")))


def test_user_namespace_ids_are_mapped(tree: Path) -> None:
    fd = os.open(tree / "root", os.O_PATH | os.O_DIRECTORY)
    with Root(fd, "c", 100000) as mapped:
        file = tarfile.TarInfo("owned")
        file.uid = file.gid = 5
        mapped.extract("/", _tar(file), copy_uid_gid=True)
        assert (tree / "root" / "owned").stat().st_uid == 100005
        assert mapped.container_ids(100005, 100005) == (5, 5)
