"""Exec's user lookup and namespace target, without joining anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime import nsexec
from runtime.namespaces import Namespace


@pytest.fixture
def etc(tmp_path: Path) -> str:
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (tmp_path / "group").write_text("root:x:0:\nstaff:x:50:app\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("app", nsexec.Identity(1000, 1000, "/home/app")),
        ("1000", nsexec.Identity(1000, 1000, "/home/app")),
        ("app:staff", nsexec.Identity(1000, 50, "/home/app")),
        ("app:7", nsexec.Identity(1000, 7, "/home/app")),
        ("4242", nsexec.Identity(4242, 4242, None)),  # no entry: its own number as gid
        ("0:0", nsexec.Identity(0, 0, "/root")),
    ],
)
def test_resolve_user(etc: str, user: str, expected: nsexec.Identity) -> None:
    assert nsexec.resolve_user(user, etc) == expected


@pytest.mark.parametrize("user", ["nobody-here", "app:nogroup"])
def test_unknown_names_are_named(etc: str, user: str) -> None:
    with pytest.raises(nsexec.UnknownUser, match=user.split(":")[-1]):
        nsexec.resolve_user(user, etc)


def test_the_user_namespace_is_joined_first() -> None:
    # user_namespaces(7): the others need capabilities in the target user ns.
    assert nsexec.NS_ORDER[0] is Namespace.NEWUSER
    assert nsexec.NS_ORDER.index(Namespace.NEWNS) < nsexec.NS_ORDER.index(Namespace.NEWPID)


def test_a_process_in_our_namespaces_needs_no_setns() -> None:
    target = nsexec.open_target(os.getpid(), lambda: True)
    assert target.namespaces == () and target.cgroup_procs == ()


def test_a_target_that_died_while_opening_is_refused() -> None:
    with pytest.raises(ProcessLookupError):
        nsexec.open_target(os.getpid(), lambda: False)


def test_close_all_but_keeps_the_listed_fds() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        keep = os.open(os.devnull, os.O_RDONLY)
        other = os.open(os.devnull, os.O_RDONLY)
        nsexec._close_all_but({keep})
        try:
            os.fstat(other)
            os._exit(1)
        except OSError:
            pass
        os.fstat(keep)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
