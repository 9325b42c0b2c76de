"""runtime/security/seccomp.py: the allow-list table, and the filter loaded for real.

The table tests read ``seccomp.entries`` (what applies to a capability set on
a machine) and the libseccomp filter ``build`` makes of it, for each
architecture and its compat ABIs.  Loading a filter needs no privilege once
no_new_privs is set (seccomp(2)), so the rest runs as any user: a forked
child loads the profile and reports what the kernel answered.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import re

import pytest

from runtime import libc
from runtime.security import seccomp
from runtime.spec import DEFAULT_CAPABILITIES

x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 numbers")

#: What no default container may call, whatever the arguments (issue 5's
#: list, then Docker's: the new mount API, io_uring, pidfd_getfd, kcmp).
DENIED_BY_DEFAULT = (
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "uselib",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "clock_settime",
    "settimeofday",
    "adjtimex",
    "clock_adjtime",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
)

#: Calls any program needs, on every ABI of each architecture.
CORE = ("read", "write", "close", "mmap", "munmap", "execve", "exit_group", "futex", "wait4")


def allowed(capabilities, machine):  # type: ignore[no-untyped-def]
    """{name: [args of each allowing entry]} for a capability set on a machine."""
    table: dict[str, list[tuple[seccomp.Cmp, ...]]] = {}
    for entry in seccomp.entries(capabilities, machine):
        if entry.errno is None:
            for name in entry.names:
                table.setdefault(name, []).append(entry.args)
    return table


def unconditional(capabilities, machine) -> set[str]:  # type: ignore[no-untyped-def]
    return {name for name, args in allowed(capabilities, machine).items() if () in args}


def pfc(capabilities, machine: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The built filter in libseccomp's pseudo code, one text per ABI."""
    with os.fdopen(os.memfd_create("pfc"), "w+b") as out:
        seccomp.build(capabilities, machine).export_pfc(out)
        out.seek(0)
        text = out.read().decode()
    parts = re.split(r"# filter for arch (\S+) ", text)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
def test_the_issue_list_is_denied_by_default(machine: str) -> None:
    permitted = allowed(DEFAULT_CAPABILITIES, machine)
    for name in DENIED_BY_DEFAULT:
        assert name not in permitted, name
    # Not one of them is answered by anything but the default EPERM.
    for entry in seccomp.entries(DEFAULT_CAPABILITIES, machine):
        assert not set(entry.names) & set(DENIED_BY_DEFAULT), entry
    # clone and personality: only with their argument filters.
    assert permitted["clone"] == [(seccomp.Cmp(0, "MASKED_EQ", 0, mask=0x7E020000),)]
    personas = permitted["personality"]
    assert len(personas) == len(seccomp.PERSONALITY_ALLOWED)
    assert set(personas) == {(seccomp.Cmp(0, "EQ", v),) for v in seccomp.PERSONALITY_ALLOWED}
    rules = {(rule.syscall, rule.action) for rule in seccomp.rules()}
    assert ("clone3", "ENOSYS") in rules and ("*", "EPERM") in rules


@pytest.mark.parametrize(("machine", "abis"), [("x86_64", 3), ("aarch64", 2)])
def test_core_syscalls_are_allowed_on_every_abi(machine: str, abis: int) -> None:
    assert CORE and set(CORE) <= unconditional((), machine)
    texts = pfc(DEFAULT_CAPABILITIES, machine)
    assert len(texts) == abis, list(texts)
    for abi, text in texts.items():
        for name in CORE:
            assert f'syscall "{name}"' in text, (abi, name)
        assert 'syscall "keyctl"' not in text and 'syscall "mount"' not in text, abi
        assert "action ERRNO(38)" in text, abi  # clone3 -> ENOSYS


def test_arch_specific_entries() -> None:
    assert {"arch_prctl", "modify_ldt"} <= unconditional((), "x86_64")
    assert not {"arch_prctl", "modify_ldt"} & unconditional((), "aarch64")
    assert "set_tls" in unconditional((), "aarch64")
    assert "set_tls" not in unconditional((), "x86_64")


@pytest.mark.parametrize("cap", sorted(seccomp.CAPABILITY_ADDS))
def test_capability_entries_appear_only_with_their_capability(cap: str) -> None:
    # ptrace and process_vm_* are also everyone's from Linux 4.8 on, as Docker's.
    everyone = {"ptrace", "process_vm_readv", "process_vm_writev"}
    names = set(seccomp.CAPABILITY_ADDS[cap])
    for machine in seccomp.ARCHES:
        without = unconditional((), machine)
        assert not (names - everyone) & without, (cap, machine)
        with_cap = unconditional((cap,), machine)
        assert names - everyone <= with_cap - without, (cap, machine)
        assert not names & set(seccomp.ALWAYS), cap


def test_capabilities_add_what_docker_adds() -> None:
    adds = seccomp.CAPABILITY_ADDS
    assert {"mount", "umount2", "setns", "unshare", "clone", "clone3"} <= set(adds["SYS_ADMIN"])
    assert {"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"} <= set(
        adds["SYS_PTRACE"]
    )
    assert set(adds["SYS_MODULE"]) == {"init_module", "finit_module", "delete_module"}
    assert adds["SYS_BOOT"] == ("reboot",) and adds["SYS_CHROOT"] == ("chroot",)
    assert {"settimeofday", "clock_settime"} <= set(adds["SYS_TIME"])
    assert {"mbind", "set_mempolicy"} <= set(adds["SYS_NICE"])
    assert adds["SYSLOG"] == ("syslog",) and adds["SYS_PACCT"] == ("acct",)
    assert set(adds["SYS_RAWIO"]) == {"iopl", "ioperm"}
    assert adds["BPF"] == ("bpf",) and adds["PERFMON"] == ("perf_event_open",)


def test_sys_admin_lifts_clone_filters() -> None:
    caps = (*DEFAULT_CAPABILITIES, "SYS_ADMIN")
    for machine in seccomp.ARCHES:
        assert {"clone", "clone3", "mount", "setns"} <= unconditional(caps, machine)
        assert all(entry.errno is None for entry in seccomp.entries(caps, machine))


def test_compiled_once_per_relevant_capability_set() -> None:
    default = seccomp.compiled(DEFAULT_CAPABILITIES)
    assert seccomp.compiled() is default
    # NET_ADMIN is not in the table: same program, not built again.
    assert seccomp.compiled((*DEFAULT_CAPABILITIES, "NET_ADMIN")) is default
    admin = seccomp.compiled((*DEFAULT_CAPABILITIES, "SYS_ADMIN"))
    assert admin != default and seccomp.compiled(("SYS_ADMIN", *DEFAULT_CAPABILITIES)) is admin


def in_filtered_child(body, capabilities=DEFAULT_CAPABILITIES) -> object:  # type: ignore[no-untyped-def]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            seccomp.load(capabilities)
            os.write(write_end, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@x86_64_only
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


@x86_64_only
def test_unknown_and_new_syscalls_answer_eperm() -> None:
    def body() -> list[int]:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        results = []
        # 400: a gap in x86_64's table, 1000: past its end (both ENOSYS unfiltered);
        # io_uring_setup, userfaultfd, pidfd_getfd, open_tree: never listed
        for number in (400, 1000, 425, 323, 438, 428):
            ctypes.set_errno(0)
            result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(0)] * 3)
            results.append(ctypes.get_errno() if result == -1 else 0)
        return results

    assert in_filtered_child(body) == [errno.EPERM] * 6


@x86_64_only
def test_clone3_answers_enosys_unless_sys_admin() -> None:
    def body() -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        ctypes.set_errno(0)
        # clone3(NULL, 0): the kernel itself refuses a zero size with EINVAL.
        result = libc.syscall(ctypes.c_long(435), ctypes.c_long(0), ctypes.c_long(0))
        return ctypes.get_errno() if result == -1 else 0

    assert in_filtered_child(body) == errno.ENOSYS
    assert in_filtered_child(body, (*DEFAULT_CAPABILITIES, "SYS_ADMIN")) == errno.EINVAL


#: i386 code for ``int f(int nr, int arg)``: ebx is callee-saved, so kept.
#: push rbx; mov eax, edi; mov ebx, esi; int 0x80; pop rbx; ret
I386_SYSCALL = bytes.fromhex("5389f889f3cd805bc3")


def i386_syscall():  # type: ignore[no-untyped-def]
    import mmap

    area = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    area.write(I386_SYSCALL)
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    function = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(address)
    return area, function


def _ia32_emulation() -> bool:
    pid = os.fork()
    if pid == 0:
        _, call = i386_syscall()
        os._exit(0 if call(20, 0) == os.getpid() else 1)  # i386 getpid
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@x86_64_only
def test_the_i386_abi_is_filtered_alike() -> None:
    if not _ia32_emulation():
        pytest.skip("this kernel runs no i386 code (IA32 emulation off)")

    def body() -> list[int]:
        _area, call = i386_syscall()
        # i386 numbers: getpid 20, keyctl 288, unshare 310 (CLONE_NEWUSER), 999 unknown
        return [call(20, 0) == os.getpid(), call(288, 0), call(310, 0x10000000), call(999, 0)]

    assert in_filtered_child(body) == [True, -errno.EPERM, -errno.EPERM, -errno.EPERM]


@x86_64_only
def test_personality_allows_only_dockers_values() -> None:
    values = sorted(seccomp.PERSONALITY_ALLOWED) + [1 << i for i in range(36)]
    values += [random.Random(5).getrandbits(32) for _ in range(500)]
    values += [0x3FFF8, 0xC, 0x18, 0x20010, 0xFFFFFFFE, 0x0400000, 0x40000]

    def body() -> list[list[int]]:
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


def test_compiled_as_whole_bpf_instructions() -> None:
    program = seccomp.compiled()
    assert program and len(program) % libc.BPF_INSTRUCTION_SIZE == 0
    assert seccomp.compiled() is program  # the launcher's children inherit this copy


@pytest.mark.parametrize("program", [b"", b"\0" * 12])
def test_a_broken_program_is_refused_before_the_kernel(program: bytes) -> None:
    with pytest.raises(ValueError):
        libc.seccomp_set_filter(program)
