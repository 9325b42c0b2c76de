"""runtime/libc.py without root: open_tree's attributes in one call where
the kernel has open_tree_attr(2), else open_tree and mount_setattr."""

from __future__ import annotations

import ctypes
import errno
import os
import sys

import pytest

from runtime import libc


def test_open_tree_sets_attributes_in_one_call_or_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    numbers = libc._MOUNT_API
    calls: list[int] = []
    missing: set[int] = set()

    def syscall(number: ctypes.c_long, *args: object) -> int:
        calls.append(number.value)
        if number.value in missing:
            ctypes.set_errno(errno.ENOSYS)
            return -1
        return 9

    monkeypatch.setattr(libc, "_raw_syscall", syscall)
    monkeypatch.setattr(libc, "_open_tree_attr", True)
    monkeypatch.setattr(libc, "_NUMBERS", numbers)
    assert libc.open_tree("/x", recursive=False, attr_set=libc.MOUNT_ATTR_RDONLY) == 9
    assert calls == [numbers["open_tree_attr"]]
    assert libc.open_tree("/x", recursive=False) == 9
    assert calls[1:] == [numbers["open_tree"]]

    # A kernel older than 6.15: ENOSYS once, then the two calls each time.
    calls.clear()
    missing.add(numbers["open_tree_attr"])
    for _ in range(2):
        assert libc.open_tree("/x", recursive=False, attr_set=libc.MOUNT_ATTR_RDONLY) == 9
    assert calls == [
        numbers["open_tree_attr"],
        numbers["open_tree"],
        numbers["mount_setattr"],
        numbers["open_tree"],
        numbers["mount_setattr"],
    ]

    # Another failure is the call's error, named.
    missing.clear()
    monkeypatch.setattr(libc, "_open_tree_attr", True)

    def refuse(number: ctypes.c_long, *args: object) -> int:
        ctypes.set_errno(errno.EPERM)
        return -1

    monkeypatch.setattr(libc, "_raw_syscall", refuse)
    with pytest.raises(PermissionError, match="open_tree /x"):
        libc.open_tree("/x", attr_set=libc.MOUNT_ATTR_RDONLY)


def test_default_disposition_resets_the_signals_posix_spawn_left_ignored() -> None:
    # glibc's posix_spawn(3) sets its own signals (32, 33) to SIG_IGN in the
    # child, which keeps them across execve(2): a zygote spawned that way
    # handed them to every container.
    script = (
        "from runtime import libc\n"
        "def ignored():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('SigIgn:'):\n"
        "            return int(line.split()[1], 16)\n"
        "before = ignored()\n"
        "for signo in libc.NPTL_SIGNALS:\n"
        "    libc.default_disposition(signo)\n"
        "print(before, ignored())\n"
    )
    read, write = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", script],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)],
        )
        os.close(write)
        _, status = os.waitpid(pid, 0)
        out = os.read(read, 1000).decode().split()
    finally:
        os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    nptl = (1 << 31) | (1 << 32)
    before, after = int(out[0]), int(out[1])
    assert before & nptl == nptl
    assert after & nptl == 0
