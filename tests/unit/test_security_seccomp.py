"""runtime/security/seccomp.py: the profile, loaded for real in a forked child.

Loading a seccomp filter needs no privilege once no_new_privs is set
(seccomp(2)), so this runs as any user: the child loads the default
filter and reports what the kernel answered.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random

import pytest

from runtime import libc
from runtime.security import seccomp

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 numbers")


def in_filtered_child(body) -> object:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            seccomp.load()
            os.write(write_end, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_rules_cover_the_issue_list() -> None:
    listed = {rule.syscall for rule in seccomp.rules()}
    for name in (
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "kexec_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "clock_settime",
        "settimeofday",
        "adjtimex",
        "open_by_handle_at",
        "userfaultfd",
        "clone",
        "personality",
    ):
        assert name in listed, name


def test_denied_calls_answer_eperm() -> None:
    def body() -> list[int]:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        results = []
        # unshare(CLONE_NEWUTS), reboot(bad magic), keyctl(GET_KEYRING_ID), bpf(0, 0, 0)
        for number, args in (
            (272, [0x04000000]),
            (169, [0, 0, 0]),
            (250, [0, 0]),
            (321, [0, 0, 0]),
        ):
            ctypes.set_errno(0)
            result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
            results.append(ctypes.get_errno() if result == -1 else 0)
        return results

    assert in_filtered_child(body) == [errno.EPERM] * 4


def test_ordinary_calls_still_work() -> None:
    def body() -> list[object]:
        pid = os.fork()  # clone without namespace flags
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        return [os.waitstatus_to_exitcode(status), os.getpid() > 0, len(os.listdir("/")) > 0]

    assert in_filtered_child(body) == [7, True, True]


def test_personality_allows_only_dockers_values() -> None:
    values = sorted(seccomp.PERSONALITY_ALLOWED) + [1 << i for i in range(36)]
    values += [random.Random(5).getrandbits(32) for _ in range(500)]
    values += [0x3FFF8, 0xC, 0x18, 0x20010, 0xFFFFFFFE, 0x0400000, 0x40000]

    def body() -> list[int]:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.personality.argtypes = [ctypes.c_ulong]
        wrong = []
        for value in values:
            ctypes.set_errno(0)
            denied = libc.personality(value) == -1 and ctypes.get_errno() == errno.EPERM
            if denied == (value in seccomp.PERSONALITY_ALLOWED):
                wrong.append(value)
            if not denied and value != 0xFFFFFFFF:
                libc.personality(0)
        return wrong

    assert in_filtered_child(body) == []


def test_compiled_once_as_whole_bpf_instructions() -> None:
    program = seccomp.compiled()
    assert program and len(program) % libc.BPF_INSTRUCTION_SIZE == 0
    assert seccomp.compiled() is program  # the launcher's children inherit this copy


@pytest.mark.parametrize("program", [b"", b"\0" * 12])
def test_a_broken_program_is_refused_before_the_kernel(program: bytes) -> None:
    with pytest.raises(ValueError):
        libc.seccomp_set_filter(program)
