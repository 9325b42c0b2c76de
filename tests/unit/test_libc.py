"""runtime/libc.py without root: open_tree's attributes in one call where
the kernel has open_tree_attr(2), else open_tree and mount_setattr."""

from __future__ import annotations

import ctypes
import errno

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
