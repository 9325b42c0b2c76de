"""runtime.images.viewtrees: the host view's trees, built once and copied,
attached in a child's own mount namespace as runtime/rootfs.py does."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from runtime import libc
from runtime.images.hostview import SKELETON
from runtime.images.viewtrees import ROOT, ViewTrees, shareable
from runtime.namespaces import Namespace
from runtime.spec import ContainerSpec, Mount, RootfsPlan, Security

pytestmark = pytest.mark.root


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A small /etc: a public file, a secret file, a secret directory."""
    root = tmp_path / "etc"
    (root / "private").mkdir(parents=True)
    (root / "private" / "key").write_text("key")
    (root / "public").write_text("public")
    (root / "shadow").write_text("hash")
    return root


def plan(
    *binds: str, masks: tuple[str, ...] = (), links: tuple[tuple[str, str], ...] = ()
) -> RootfsPlan:
    return RootfsPlan(root="/r", layer="/l", binds=binds, masks=masks, links=links)


def in_child(trees: dict[str, int], check: str) -> str:
    """Attach ``trees`` under a tmpfs in a forked child's own mount namespace,
    then run ``check`` there (Python source; its ``result`` is reported)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        result = "?"
        try:
            libc.unshare(Namespace.NEWNS)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
            libc.mount("tmpfs", "/mnt", "tmpfs", 0, "size=64k")
            for path, fd in trees.items():
                target = "/mnt" + path.rstrip("/")
                os.makedirs(target, exist_ok=True)
                libc.move_mount(fd, target)
            scope: dict[str, object] = {"os": os}
            exec(check, scope)
            result = str(scope["result"])
        except OSError as err:
            result = f"error {err}"
        os.write(write, result.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out


def test_copies_hold_the_masks_and_are_read_only(etc: Path) -> None:
    trees = ViewTrees()
    secret = (str(etc / "shadow"), str(etc / "private"))
    copies = trees.copies(plan(str(etc), masks=secret))
    assert copies is not None and list(copies) == [str(etc)]
    mnt = "/mnt" + str(etc)
    check = (
        f"result = [open('{mnt}/public').read(), open('{mnt}/shadow').read(), "
        f"os.listdir('{mnt}/private')]\n"
        f"try:\n    open('{mnt}/new', 'w')\nexcept OSError as e:\n    result.append(e.errno)"
    )
    out = in_child(copies, check)
    assert out == str(["public", "", [], errno.EROFS])
    trees.close()


def test_trees_are_built_again_when_the_masks_change(etc: Path) -> None:
    trees = ViewTrees()
    first = trees.copies(plan(str(etc)))
    assert first is not None
    out = in_child(first, f"result = open('/mnt{etc}/shadow').read()")
    assert out == "hash"  # no mask asked for: shown
    second = trees.copies(plan(str(etc), masks=(str(etc / "shadow"),)))
    assert second is not None
    out = in_child(second, f"result = open('/mnt{etc}/shadow').read()")
    assert out == ""
    for fd in (*first.values(), *second.values()):
        os.close(fd)
    trees.close()


def test_a_mask_gone_meanwhile_needs_no_cover(etc: Path) -> None:
    trees = ViewTrees()
    copies = trees.copies(plan(str(etc), masks=(str(etc / "gone"),)))
    assert copies is not None
    for fd in copies.values():
        os.close(fd)
    trees.close()


def test_a_kernel_that_refuses_leaves_the_view_to_the_child(
    etc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> int:
        raise OSError(errno.EINVAL, "move_mount: Invalid argument")

    monkeypatch.setattr(libc, "move_mount", refuse)
    trees = ViewTrees()
    assert trees.copies(plan(str(etc), masks=(str(etc / "shadow"),))) is None
    monkeypatch.undo()
    assert trees.copies(plan(str(etc))) is None  # not tried again


def test_the_whole_root_holds_the_skeleton_links_and_trees(etc: Path) -> None:
    trees = ViewTrees()
    view = plan(str(etc), masks=(str(etc / "shadow"),), links=(("/bin", "usr/bin"),))
    copies = trees.copies(view, whole=True)
    assert copies is not None and list(copies) == [ROOT]
    check = (
        "import stat\n"
        "result = [sorted(os.listdir('/mnt')), oct(stat.S_IMODE(os.stat('/mnt/root').st_mode)), "
        f"os.readlink('/mnt/bin'), open('/mnt{etc}/public').read(), "
        f"open('/mnt{etc}/shadow').read()]"
    )
    out = in_child(copies, check)
    top = sorted({path.split("/")[1] for path in SKELETON} | {"bin", str(etc).split("/")[1]})
    assert out == str([top, "0o700", "usr/bin", "public", ""])
    # Per tree as before, on request, from the same build.
    single = trees.copies(view)
    assert single is not None and list(single) == [str(etc)]
    for fd in single.values():
        os.close(fd)
    trees.close()


def test_a_kernel_that_refuses_the_root_gives_the_trees(
    etc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> int:
        raise OSError(errno.EINVAL, "fsopen: Invalid argument")

    monkeypatch.setattr(libc, "fsmount_new", refuse)
    trees = ViewTrees()
    copies = trees.copies(plan(str(etc)), whole=True)
    assert copies is not None and list(copies) == [str(etc)]
    for fd in copies.values():
        os.close(fd)
    trees.close()


def host_spec(**changes: Any) -> ContainerSpec:
    view = plan("/usr", "/etc", links=(("/bin", "usr/bin"),))
    spec = ContainerSpec(command=("true",), hostname="h", rootfs=view)
    return dataclasses.replace(spec, **changes)


@pytest.mark.parametrize(
    ("changes", "shared"),
    [
        ({}, True),
        ({"workdir": "/root"}, True),  # there already
        ({"workdir": "/tmp/a/b"}, True),  # in the container's own /tmp
        ({"workdir": "/bin/x"}, True),  # through a link into a read-only tree
        ({"workdir": "/data"}, False),  # would be made in the root's tmpfs
        ({"workdir": "/var/log/app"}, False),
        ({"mounts": (Mount("tmpfs", "/scratch"),)}, False),
        ({"mounts": (Mount("tmpfs", "/run/x"),)}, True),
        ({"mounts": (Mount("bind", "/etc/hosts", source="/etc/hosts"),)}, True),
        ({"security": Security(capabilities=("CHOWN", "SYS_ADMIN"))}, False),
        ({"security": Security(userns_host_id=100000)}, False),
        ({"rootfs": None}, False),
    ],
)
def test_shareable_only_when_nothing_is_written_into_the_root(
    changes: dict[str, Any], shared: bool
) -> None:
    assert shareable(host_spec(**changes)) is shared
