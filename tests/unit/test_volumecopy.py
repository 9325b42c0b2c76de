"""runtime/volumecopy.py: a new volume gets the merged image's files at its target."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.images.importer import OPAQUE_XATTR
from runtime.volumecopy import copy_up


def whiteout(path: Path) -> None:
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


def test_the_layers_merge_bottom_first_with_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    bottom, middle, top = (tmp_path / n for n in ("bottom", "middle", "top"))
    (bottom / "data" / "old").mkdir(parents=True)
    (bottom / "data" / "keep").write_text("bottom keep\n")
    (bottom / "data" / "gone").write_text("deleted above\n")
    (bottom / "data" / "old" / "stale").write_text("hidden by opaque\n")
    (bottom / "data" / "replaced").write_text("old\n")
    (middle / "data" / "old").mkdir(parents=True)
    os.setxattr(middle / "data" / "old", OPAQUE_XATTR, b"y")
    (middle / "data" / "old" / "fresh").write_text("middle\n")
    whiteout(middle / "data" / "gone")
    (top / "data").mkdir(parents=True)
    (top / "data" / "replaced").write_text("new\n")
    (top / "data" / "added").write_text("top\n")
    os.chown(top / "data" / "added", 1000, 1001)
    os.chmod(top / "data", 0o751)
    volume = tmp_path / "volume"
    volume.mkdir()
    copy_up([str(top), str(middle), str(bottom)], "/data", str(volume))
    files = {str(p.relative_to(volume)): p.read_text() for p in volume.rglob("*") if p.is_file()}
    assert files == {
        "keep": "bottom keep\n",
        "replaced": "new\n",
        "added": "top\n",
        "old/fresh": "middle\n",
    }
    assert (os.stat(volume / "added").st_uid, os.stat(volume / "added").st_gid) == (1000, 1001)
    assert os.stat(volume).st_mode & 0o777 == 0o751


def test_a_target_deleted_made_opaque_or_linked_above_hides_the_layers_below(
    tmp_path: Path,
) -> None:
    bottom, top = tmp_path / "bottom", tmp_path / "top"
    for name in ("wh", "opq", "link"):
        (bottom / name).mkdir(parents=True)
        (bottom / name / "below").write_text("x")
    top.mkdir()
    whiteout(top / "wh")
    (top / "opq").mkdir()
    os.setxattr(top / "opq", OPAQUE_XATTR, b"y")
    (top / "opq" / "above").write_text("y")
    (top / "link").symlink_to("/etc")
    got = {}
    for name in ("wh", "opq", "link"):
        volume = tmp_path / f"v-{name}"
        volume.mkdir()
        copy_up([str(top), str(bottom)], f"/{name}", str(volume))
        got[name] = sorted(os.listdir(volume))
    assert got == {"wh": [], "opq": ["above"], "link": []}
