"""runtime.namespaces: clone flags by name."""

from __future__ import annotations

import os
import signal

import pytest

from runtime.namespaces import (
    CLONE_PIDFD,
    DEFAULT_NAMESPACES,
    Namespace,
    clone_flags,
    describe,
)


def test_values_match_linux_sched_h() -> None:
    # <linux/sched.h>; os exposes the same constants since Python 3.12.
    expected = {
        "NEWNS": 0x00020000,
        "NEWCGROUP": 0x02000000,
        "NEWUTS": 0x04000000,
        "NEWIPC": 0x08000000,
        "NEWUSER": 0x10000000,
        "NEWPID": 0x20000000,
        "NEWNET": 0x40000000,
    }
    assert {ns.name: int(ns) for ns in Namespace} == expected
    for name, value in expected.items():
        if hasattr(os, f"CLONE_{name}"):
            assert getattr(os, f"CLONE_{name}") == value


def test_flags_by_name() -> None:
    assert Namespace["NEWPID"] is Namespace.NEWPID
    assert Namespace(0x40000000) is Namespace.NEWNET


@pytest.mark.parametrize(
    ("ns", "entry"),
    [
        (Namespace.NEWNS, "mnt"),
        (Namespace.NEWPID, "pid"),
        (Namespace.NEWUTS, "uts"),
        (Namespace.NEWNET, "net"),
        (Namespace.NEWIPC, "ipc"),
        (Namespace.NEWUSER, "user"),
        (Namespace.NEWCGROUP, "cgroup"),
    ],
)
def test_proc_names_exist_in_proc_self_ns(ns: Namespace, entry: str) -> None:
    assert ns.proc_name == entry
    assert os.path.exists(f"/proc/self/ns/{entry}")


def test_default_namespaces_are_the_tutorials_five() -> None:
    assert set(DEFAULT_NAMESPACES) == {
        Namespace.NEWNS,
        Namespace.NEWPID,
        Namespace.NEWUTS,
        Namespace.NEWNET,
        Namespace.NEWIPC,
    }


def test_clone_flags_add_pidfd_and_sigchld() -> None:
    flags = clone_flags(DEFAULT_NAMESPACES)
    assert flags & 0xFF == signal.SIGCHLD
    assert flags & CLONE_PIDFD
    assert flags & ~(0xFF | CLONE_PIDFD) == int(DEFAULT_NAMESPACES)


def test_describe_the_default_flag_word() -> None:
    assert describe(clone_flags(DEFAULT_NAMESPACES)) == (
        "NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET|PIDFD|SIGCHLD"
    )


def test_describe_partial_words() -> None:
    assert describe(int(Namespace.NEWUSER)) == "NEWUSER"
    assert describe(int(Namespace.NEWPID) | int(signal.SIGUSR1)) == "NEWPID|SIGUSR1"
    assert describe(0) == ""
