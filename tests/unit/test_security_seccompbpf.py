"""runtime/security/seccompbpf.py: the compact program decides as libseccomp's does.

Both programs run through a small classic-BPF interpreter (the subset both
use: loads of ``seccomp_data`` words, ``and`` with a constant, jumps,
returns) for every syscall number of every ABI, a few numbers far
past the tables, an unknown audit arch, and, for each number whose reference
program reads an argument, argument values on both sides of every constant
either program compares with.
"""

from __future__ import annotations

import errno
import struct

import pytest

from runtime.security import seccomp, seccompbpf
from runtime.spec import DEFAULT_CAPABILITIES

LD_W_ABS, ALU_AND_K, JSET_K = 0x20, 0x54, 0x45
#: Conditional jumps with a constant, by opcode.
JUMPS = {
    seccompbpf.JEQ_K: lambda a, k: a == k,
    seccompbpf.JGT_K: lambda a, k: a > k,
    seccompbpf.JGE_K: lambda a, k: a >= k,
    JSET_K: lambda a, k: bool(a & k),
}


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]


def run(insns, arch: int, nr: int, args=(0,) * 6) -> tuple[int, bool]:
    """(the program's return value, whether it read an argument)."""
    value, read_args, _ = execute(insns, arch, nr, args)
    return value, read_args


def execute(insns, arch: int, nr: int, args=(0,) * 6) -> tuple[int, bool, int]:
    """(the return value, whether it read an argument, how many conditional
    jumps it ran through).

    Both programs use only these instructions; any other fails the test."""
    data = struct.pack("<II Q 6Q", nr, arch, 0, *args)
    a = 0
    read_args = False
    pc = jumps = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == LD_W_ABS:
            assert k % 4 == 0 and k + 4 <= len(data), k
            read_args |= k >= seccompbpf.ARGS_OFFSET
            a = struct.unpack_from("<I", data, k)[0]
        elif code == ALU_AND_K:
            a &= k
        elif code == seccompbpf.JA:
            pc += k
        elif code in JUMPS:
            jumps += 1
            pc += jt if JUMPS[code](a, k) else jf
        elif code == seccompbpf.RET_K:
            return k, read_args, jumps
        else:
            raise AssertionError(f"opcode {code:#x} not interpreted")


def interesting() -> set[int]:
    """Words around every constant the table compares an argument with: the
    value, its neighbours, the mask, and every single bit."""
    values = {1 << bit for bit in range(32)} | {0, 0xFFFFFFFF, 0x7FFFFFFF}
    for entry in seccomp.TABLE:
        for cmp in entry.args:
            for k in (cmp.value, cmp.mask, cmp.value ^ cmp.mask):
                values |= {k, (k - 1) & 0xFFFFFFFF, (k + 1) & 0xFFFFFFFF}
    return values


def args_variants(words: set[int]) -> list[int]:
    """64-bit argument values built from 32-bit words: high word 0, 1 or all ones."""
    return sorted({high << 32 | low for low in words for high in (0, 1, 0xFFFFFFFF)})


CAPABILITY_SETS = [
    DEFAULT_CAPABILITIES,
    (*DEFAULT_CAPABILITIES, "SYS_ADMIN"),
    tuple(sorted(seccomp.RELEVANT_CAPABILITIES)),
]


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
@pytest.mark.parametrize("caps", CAPABILITY_SETS, ids=lambda caps: f"{len(caps)}caps")
def test_same_decisions_as_libseccomp(machine: str, caps: tuple[str, ...]) -> None:
    reference = decode(seccomp.reference(caps, machine))
    compact = decode(seccomp.compact(caps, machine))
    assert compact != reference  # the compiler ran, not the fallback
    audits = {seccompbpf.AUDIT[token][0] for token in seccomp.ARCHES[machine]}
    # Past each table's end (x86_64's and i386's < 470, x32's < 0x40000230).
    numbers = [*range(0, 640), *range(0x40000000, 0x40000000 + 640)]
    numbers += [1000, 0x3FFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
    variants = args_variants(interesting())
    argument_numbers = 0
    for arch in [*sorted(audits), 0xDEADBEEF]:
        for nr in numbers if arch != 0xDEADBEEF else numbers[:10]:
            expected, read_args = run(reference, arch, nr)
            assert run(compact, arch, nr)[0] == expected, (hex(arch), hex(nr))
            if not read_args:
                continue
            argument_numbers += 1
            for index in range(6):
                for value in variants:
                    args = tuple(value if i == index else 0 for i in range(6))
                    got = run(compact, arch, nr, args)[0]
                    assert got == run(reference, arch, nr, args)[0], (hex(nr), index, hex(value))
    assert argument_numbers >= len(audits)  # clone / socket / personality were reached


def test_a_third_of_the_length() -> None:
    reference = seccomp.reference(DEFAULT_CAPABILITIES)
    compact = seccomp.compiled(DEFAULT_CAPABILITIES)
    assert compact == seccomp.compact(DEFAULT_CAPABILITIES)  # the cache holds a fresh compile
    assert len(compact) * 2 < len(reference), (len(compact) // 8, len(reference) // 8)


def test_one_return_block_per_decision_and_a_logarithmic_search() -> None:
    # Per ABI section, the search is balanced (a number meets at most
    # ceil(log2(runs)) boundaries) and ends in the section's one block for
    # its decision: no return is repeated for another part of the range.
    insns = decode(seccomp.compiled(DEFAULT_CAPABILITIES))
    rets = [k for code, _, _, k in insns if code == seccompbpf.RET_K]
    default = seccompbpf.RET_ERRNO | errno.EPERM
    entries = seccomp.entries(DEFAULT_CAPABILITIES, "x86_64")
    sections: dict[int, dict[int, seccompbpf.Decision]] = {}
    for token in seccomp.ARCHES["x86_64"]:
        audit, wide = seccompbpf.AUDIT[token]
        abi = seccompbpf.Abi(token, audit, wide)
        sections.setdefault(audit, {}).update(seccompbpf.decisions(entries, abi, default))
    blocks = 1  # the bad arch's kill
    depth = 0
    for table in sections.values():
        decisions = {decision for _, decision in seccompbpf.runs(table, default)}
        blocks += sum(len(d.rules) + 1 for d in decisions)
        depth = max(depth, len(seccompbpf.runs(table, default)).bit_length())
    assert len(rets) == blocks
    for arch in {audit for audit in sections}:
        for nr in range(0, 1024, 3):
            assert execute(insns, arch, nr)[2] <= len(sections) + depth + 8


def test_only_instructions_the_kernel_cache_follows() -> None:
    # seccomp_is_const_allow (kernel/seccomp.c) follows these and nothing else.
    allowed = {LD_W_ABS, ALU_AND_K, seccompbpf.JA, *JUMPS, seccompbpf.RET_K}
    for code, _, _, _ in decode(seccomp.compiled(DEFAULT_CAPABILITIES)):
        assert code in allowed, hex(code)


def test_far_jumps_go_through_trampolines() -> None:
    asm = seccompbpf._Assembler()
    far = asm.label()
    asm.emit(seccompbpf.JEQ_K, 7, true=far)
    for _ in range(300):
        asm.emit(seccompbpf.RET_K, 1)
    asm.place(far)
    asm.emit(seccompbpf.RET_K, 2)
    insns = decode(asm.assemble())
    assert len(insns) == 303  # the jump, its trampoline, 300 returns, the target
    assert run(insns, 0, 0)[0] == 1
    # arch is loaded nowhere: feed A through nr's word by a first load
    insns = [(LD_W_ABS, 0, 0, 0), *insns]
    assert run(insns, 0, 7)[0] == 2 and run(insns, 0, 8)[0] == 1


def test_tables_it_does_not_express_fall_back_to_libseccomp() -> None:
    odd = [
        seccomp.Entry(("read",)),
        seccomp.Entry(("read",), errno=errno.EACCES),
    ]
    tokens = seccomp.ARCHES["x86_64"]
    assert seccompbpf.program(odd, tokens, seccompbpf.RET_ERRNO | errno.EPERM) is None
    assert seccompbpf.program(seccomp.TABLE[:1], (), 0) is None
