"""runtime.images.hostview: what the host image shows, the /etc masks and their refresh.

The view's effect in real containers is tested in tests/e2e/test_host_view.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.images import hostview


def _tree(root: Path) -> None:
    (root / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "passwd").chmod(0o644)
    (root / "shadow").write_text("root:$6$secret\n")
    (root / "shadow").chmod(0o640)
    (root / "ssl" / "private").mkdir(parents=True)
    (root / "ssl" / "private").chmod(0o700)
    (root / "ssl" / "private" / "key.pem").write_text("key")
    (root / "ssl" / "certs").mkdir()
    (root / "ssl" / "certs" / "ca.pem").write_text("ca")
    (root / "ssl" / "certs" / "ca.pem").chmod(0o644)
    (root / "ssl" / "certs" / "ca.key").write_text("k")
    (root / "ssl" / "certs" / "ca.key").chmod(0o600)
    (root / "listable-only").mkdir(mode=0o744)
    (root / "listable-only").chmod(0o744)
    (root / "link").symlink_to("shadow")


def test_masks_are_what_other_may_not_read(tmp_path: Path) -> None:
    _tree(tmp_path)
    masks = hostview.etc_masks(str(tmp_path))
    assert masks == tuple(
        sorted(
            str(tmp_path / p)
            for p in ("shadow", "ssl/private", "ssl/certs/ca.key", "listable-only")
        )
    )


def test_a_masked_directory_is_not_walked(tmp_path: Path) -> None:
    _tree(tmp_path)
    walked: list[str] = []
    hostview.etc_masks(str(tmp_path), watch=walked.append)
    assert str(tmp_path / "ssl" / "private") not in walked
    assert sorted(walked) == sorted(
        str(p) for p in (tmp_path, tmp_path / "ssl", tmp_path / "ssl/certs")
    )


def test_the_masks_follow_a_chmod_a_new_file_and_a_new_directory(tmp_path: Path) -> None:
    _tree(tmp_path)
    etc = hostview.EtcMasks(str(tmp_path))
    try:
        before = etc.current()
        assert etc.current() is before  # nothing changed: no walk
        (tmp_path / "passwd").chmod(0o600)
        assert str(tmp_path / "passwd") in etc.current()
        (tmp_path / "ssl" / "certs" / "new.key").write_text("k")
        (tmp_path / "ssl" / "certs" / "new.key").chmod(0o600)
        assert str(tmp_path / "ssl" / "certs" / "new.key") in etc.current()
        (tmp_path / "sub").mkdir(mode=0o755)
        (tmp_path / "sub").chmod(0o755)
        masks = etc.current()
        (tmp_path / "sub" / "deep.key").write_text("k")  # in a directory made after a walk
        (tmp_path / "sub" / "deep.key").chmod(0o600)
        assert str(tmp_path / "sub" / "deep.key") in etc.current()
        assert str(tmp_path / "sub" / "deep.key") not in masks
        (tmp_path / "passwd").chmod(0o644)
        assert str(tmp_path / "passwd") not in etc.current()
    finally:
        etc.close()


def test_without_inotify_the_masks_are_walked_again_after_the_poll_interval(
    tmp_path: Path,
) -> None:
    _tree(tmp_path)
    etc = hostview.EtcMasks(str(tmp_path), poll_seconds=0.0)
    etc.close()  # as when inotify_init1 failed
    (tmp_path / "passwd").chmod(0o600)
    assert str(tmp_path / "passwd") in etc.current()
    slow = hostview.EtcMasks(str(tmp_path), poll_seconds=3600)
    slow.close()
    (tmp_path / "passwd").chmod(0o644)
    assert str(tmp_path / "passwd") in slow.current()  # not yet walked again


def test_one_watch_of_etc_per_process() -> None:
    assert hostview.shared_masks() is hostview.shared_masks()
    assert hostview.HostView().masks() == hostview.shared_masks().current()


def test_layout_binds_directories_and_recreates_usr_merge_links() -> None:
    layout = hostview.layout()
    for path in hostview.SYSTEM_PATHS:
        if os.path.islink(path):
            assert (path, os.readlink(path)) in layout.links
        elif os.path.isdir(path):
            assert path in layout.binds
        else:
            assert path not in layout.binds and path not in dict(layout.links)
    assert "/etc" in layout.binds and "/usr" in layout.binds
    assert not hostview.HostView().shows("/srv/data")


def _a_host_dir_outside_the_view() -> str:
    """An existing directory the view neither has nor refuses: Debian's
    base-files make these (a checkout or tmp_path may lie under /tmp, which
    the view replaces with a tmpfs, and so refuses)."""
    for path in ("/srv", "/opt", "/mnt", "/media"):
        if os.path.isdir(path) and os.path.realpath(path) == path:
            return path
    pytest.skip("no /srv, /opt, /mnt or /media on this host")


def test_extra_paths_are_added_after_the_system_ones() -> None:
    extra = _a_host_dir_outside_the_view()
    layout = hostview.layout([extra])
    assert layout.binds[-1] == extra
    view = hostview.HostView([extra])
    assert view.shows(f"{extra}/x") and f"{extra} (read-only)" in view.contents()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("relative/dir", "not an absolute path"),
        ("/", "the whole host"),
        ("/no/such/dir", "not a directory"),
        ("/proc/sys", "their own proc"),
        ("/tmp", "private tmpfs"),
        ("/usr/lib", "already in the host image"),
    ],
)
def test_extra_paths_that_cannot_be_added(path: str, reason: str) -> None:
    with pytest.raises(hostview.HostPathError, match=reason):
        hostview.layout([path])


def test_an_extra_path_through_a_symlink_names_the_real_one(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(hostview.HostPathError, match=str(tmp_path / "real")):
        hostview.layout([str(tmp_path / "alias")])
