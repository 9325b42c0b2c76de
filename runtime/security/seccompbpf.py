"""The allow list as a compact classic BPF program, without libseccomp's tree.

Why: the kernel's cost of installing a filter grows with its length
(seccomp(2) converts the classic program to eBPF and JIT-compiles it on
every load, in every child).  libseccomp's output for Docker's allow list
on x86_64 (x86_64, i386 and x32 ABIs, binary tree) is ~1,230 instructions
and cost ~0.6 ms more to load than the deny list it replaced (188); this
program says the same in ~410 (docs/performance.md, "The host-image
launch").

Map of the module:

``Abi``          one ABI of the filter: the audit arch the kernel reports
                 for it in ``seccomp_data.arch`` (<linux/audit.h>), its
                 syscall numbers (libseccomp's, per name) and its word size
``Decision``     what one syscall number gets: a return value, or argument
                 rules tried in order, then the fallback
``program``      the resolved table (``seccomp.entries``) as BPF bytes, or
                 ``None`` when it holds something this compiler does not
                 express (the caller then exports libseccomp's filter)

The shape, per audit arch: load ``nr``; a balanced binary search over the
runs (a run: consecutive numbers with one decision, gaps included), one
``jge`` per boundary, whose leaves jump to the section's one block per
decision (``ret``, or the argument checks then ``ret``).
Only instructions the kernel's constant-action cache understands are used
(``ld [nr]``/``ld [arch]``, ``jeq``/``jge``/``jgt``/``jset`` with constants,
``ja``, ``ret``: ``seccomp_is_const_allow`` in kernel/seccomp.c), so every
syscall allowed without argument checks is still allowed from the cache,
without running the program.

The same decisions as libseccomp's program, which stays the reference: a
unit test runs both through a BPF interpreter for every number of every
ABI, with argument values around each comparison.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyseccomp

if TYPE_CHECKING:
    from runtime.security.seccomp import Entry

#: <linux/filter.h> / <linux/bpf_common.h> opcodes used here.
LD_W_ABS = 0x20
ALU_AND_K = 0x54
JA = 0x05
JEQ_K, JGT_K, JGE_K = 0x15, 0x25, 0x35
RET_K = 0x06
#: The largest jt/jf of a conditional jump (u8); farther needs a ``ja``.
MAX_SHORT = 255

#: <linux/seccomp.h>: actions.
RET_KILL_THREAD = 0x00000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

#: struct seccomp_data: nr, arch, instruction_pointer, args[6] (u64 each).
NR_OFFSET, ARCH_OFFSET, ARGS_OFFSET = 0, 4, 16

#: libseccomp's arch token -> (audit arch of <linux/audit.h>, 64-bit args).
#: x32 reports AUDIT_ARCH_X86_64 and sets bit 30 in its numbers; libseccomp
#: filters its arguments as 32-bit words, as it does i386's and arm's.
AUDIT: dict[int, tuple[int, bool]] = {
    pyseccomp.Arch.X86_64: (0xC000003E, True),
    pyseccomp.Arch.X86: (0x40000003, False),
    pyseccomp.Arch.X32: (0xC000003E, False),
    pyseccomp.Arch.AARCH64: (0xC00000B7, True),
    pyseccomp.Arch.ARM: (0x40000028, False),
}

#: One comparison: (arg index, op, value, mask); ops as in ``seccomp.Cmp``.
Check = tuple[int, str, int, int]
#: One rule: all its checks hold -> its return value.
Rule = tuple[tuple[Check, ...], int]


@dataclass(frozen=True)
class Decision:
    """A syscall number's outcome: ``rules`` tried in order, else ``fallback``."""

    fallback: int
    rules: tuple[Rule, ...] = ()
    wide: bool = True  # 64-bit arguments (two words per comparison)


@dataclass(frozen=True)
class Abi:
    token: int  # libseccomp's
    audit: int
    wide: bool


class Unsupported(ValueError):
    """The table holds something this compiler does not express."""


# -- the table, resolved per ABI -------------------------------------------------
def decisions(entries: Iterable[Entry], abi: Abi, default: int) -> dict[int, Decision]:
    """``{number: Decision}`` of ``entries`` (``seccomp.Entry``) for ``abi``.

    As libseccomp resolves them: an entry without arguments decides its
    syscall outright; entries with arguments are OR-ed; two outright
    entries with different actions, or argument rules of different
    actions, are refused (libseccomp's precedence is not reproduced)."""
    outright: dict[int, int] = {}
    conditional: dict[int, list[Rule]] = {}
    for entry in entries:
        action = RET_ALLOW if entry.errno is None else RET_ERRNO | entry.errno
        checks = tuple((c.index, c.op, c.value, c.mask) for c in entry.args)
        for name in entry.names:
            number = _number(abi.token, name)
            if number is None:  # unknown to this ABI: stays denied
                continue
            if not checks:
                if outright.setdefault(number, action) != action:
                    raise Unsupported(f"{name}: two actions")
            else:
                conditional.setdefault(number, []).append((checks, action))
    result = {number: Decision(action) for number, action in outright.items()}
    for number, rules in conditional.items():
        if number in result:
            if {action for _, action in rules} - {result[number].fallback}:
                raise Unsupported(f"syscall {number}: rules and an outright action differ")
            continue  # the outright entry already allows every argument
        if len({action for _, action in rules}) != 1:
            raise Unsupported(f"syscall {number}: rules of different actions")
        result[number] = Decision(default, tuple(rules), abi.wide)
    return result


#: Past every ABI's last syscall number (x32's bit 30 aside).
_LAST_NUMBER = 1024


def _number(token: int, name: str) -> int | None:
    """``name``'s number on ``token``'s ABI, as the kernel sees it in ``nr``.

    libseccomp answers i386's socket and SysV IPC calls with pseudo numbers
    (< 0: they are also reached through socketcall(2)/ipc(2)) and puts
    their direct numbers in its filter; those come from its reverse table."""
    number = int(pyseccomp.resolve_syscall(token, name))
    if number >= 0:
        return number
    return _direct(token).get(name)


@functools.cache
def _direct(token: int) -> dict[str, int]:
    names: dict[str, int] = {}
    base = 0x40000000 if token == pyseccomp.Arch.X32 else 0
    for number in range(base, base + _LAST_NUMBER):
        try:
            names.setdefault(pyseccomp.resolve_syscall(token, number).decode(), number)
        except ValueError:
            continue
    return names


def runs(table: dict[int, Decision], default: int) -> list[tuple[int, Decision]]:
    """``[(first number, decision)]`` covering 0..2**32-1, neighbours merged."""
    result: list[tuple[int, Decision]] = []
    deny = Decision(default)

    def add(start: int, decision: Decision) -> None:
        if not result or result[-1][1] != decision:
            result.append((start, decision))

    add(0, deny)
    for number in sorted(table):
        add(number, table[number])
        if number + 1 not in table and number < 0xFFFFFFFF:
            add(number + 1, deny)
    return result


# -- assembly: symbolic jumps, then offsets --------------------------------------
@dataclass
class _Insn:
    code: int
    k: int = 0
    true: object = None  # label (or None: the next instruction)
    false: object = None


class _Assembler:
    """Instructions and labels; jumps only forward (the verifier's rule)."""

    def __init__(self) -> None:
        self.items: list[_Insn | str] = []
        self._labels = 0

    def label(self) -> str:
        self._labels += 1
        return f"L{self._labels}"

    def place(self, label: str) -> None:
        self.items.append(label)

    def emit(self, code: int, k: int = 0, true: object = None, false: object = None) -> None:
        self.items.append(_Insn(code, k, true, false))

    def assemble(self) -> bytes:
        """Offsets, with a ``ja`` after a conditional jump whose target is
        farther than a u8 can say, repeated until nothing moves."""
        far: set[tuple[int, str]] = set()
        while True:
            where, labels = self._layout(far)
            grown = False
            for index, item in enumerate(self.items):
                if isinstance(item, str) or item.code in (JA, RET_K, LD_W_ABS, ALU_AND_K):
                    continue
                for side in ("true", "false"):
                    target = getattr(item, side)
                    if target is None or (index, side) in far:
                        continue
                    if labels[target] - (where[index] + 1) > MAX_SHORT:
                        far.add((index, side))
                        grown = True
            if not grown:
                return self._encode(far, where, labels)

    def _size(self, index: int, item: _Insn, far: set[tuple[int, str]]) -> int:
        return 1 + ((index, "true") in far) + ((index, "false") in far)

    def _layout(self, far: set[tuple[int, str]]) -> tuple[dict[int, int], dict[object, int]]:
        where: dict[int, int] = {}
        labels: dict[object, int] = {}
        pc = 0
        for index, item in enumerate(self.items):
            if isinstance(item, str):
                labels[item] = pc
            else:
                where[index] = pc
                pc += self._size(index, item, far)
        return where, labels

    def _encode(
        self, far: set[tuple[int, str]], where: dict[int, int], labels: dict[object, int]
    ) -> bytes:
        out = bytearray()
        for index, item in enumerate(self.items):
            if isinstance(item, str):
                continue
            pc = where[index]
            if item.code == JA:
                out += _pack(JA, 0, 0, labels[item.true] - (pc + 1))
                continue
            if item.code in (RET_K, LD_W_ABS, ALU_AND_K):
                out += _pack(item.code, 0, 0, item.k)
                continue
            # A far side jumps to a ``ja`` right after: true's first, then false's.
            trampolines = [side for side in ("true", "false") if (index, side) in far]
            offsets = {}
            for side in ("true", "false"):
                target = getattr(item, side)
                if (index, side) in far:
                    offsets[side] = trampolines.index(side)
                else:
                    after = pc + 1 + len(trampolines)
                    # The next instruction, for None, is the one after the trampolines.
                    offsets[side] = (
                        len(trampolines) if target is None else labels[target] - (pc + 1)
                    )
                    if target is not None and labels[target] < after:
                        raise AssertionError("a jump into its own trampolines")
            out += _pack(item.code, offsets["true"], offsets["false"], item.k)
            for position, side in enumerate(trampolines):
                ja_pc = pc + 1 + position
                out += _pack(JA, 0, 0, labels[getattr(item, side)] - (ja_pc + 1))
        return bytes(out)


def _pack(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


# -- code ---------------------------------------------------------------------------
def _section(asm: _Assembler, table: list[tuple[int, Decision]]) -> None:
    """``nr`` is in A; decide among ``table``'s runs: a balanced binary
    search over the runs' boundaries whose leaves jump to one block per
    decision, placed once after the search (not once per chunk of runs:
    those repeated returns were a quarter of the program)."""
    blocks = {decision: asm.label() for _, decision in table}
    if len(table) == 1:
        asm.emit(JA, true=blocks[table[0][1]])
    else:
        _search(asm, table, blocks)
    for decision, label in blocks.items():
        asm.place(label)
        _decide(asm, decision)


def _search(
    asm: _Assembler, table: Sequence[tuple[int, Decision]], blocks: dict[Decision, str]
) -> None:
    """One ``jge`` per boundary (``table`` holds at least two runs): the
    left half falls through, a half of one run jumps straight to its block."""
    middle = len(table) // 2
    left, right = table[:middle], table[middle:]
    right_label = blocks[right[0][1]] if len(right) == 1 else asm.label()
    left_label = blocks[left[0][1]] if len(left) == 1 else None
    asm.emit(JGE_K, right[0][0], true=right_label, false=left_label)
    if len(left) > 1:
        _search(asm, left, blocks)
    if len(right) > 1:
        asm.place(right_label)
        _search(asm, right, blocks)


def _decide(asm: _Assembler, decision: Decision) -> None:
    for checks, action in decision.rules:
        fail = asm.label()
        for check in checks:
            _check(asm, check, decision.wide, fail)
        asm.emit(RET_K, action)
        asm.place(fail)
    asm.emit(RET_K, decision.fallback)


def _check(asm: _Assembler, check: Check, wide: bool, fail: str) -> None:
    """Fall through when ``check`` holds, jump to ``fail`` when not.

    A 64-bit argument is compared as libseccomp does: the high word
    (offset +4 on a little-endian machine) decides unless equal, then the
    low word; a 32-bit ABI's arguments are their low word."""
    index, op, value, mask = check
    low_offset = ARGS_OFFSET + 8 * index
    words = [(low_offset + 4, value >> 32, mask >> 32)] if wide else []
    words.append((low_offset, value & 0xFFFFFFFF, mask & 0xFFFFFFFF))
    if op == "MASKED_EQ":  # a word masked to nothing that must be 0 always is
        words = [word for word in words if word[1:] != (0, 0)]
    passed = asm.label()
    for position, (offset, word, word_mask) in enumerate(words):
        last = position == len(words) - 1
        asm.emit(LD_W_ABS, offset)
        if op in ("EQ", "MASKED_EQ"):
            if op == "MASKED_EQ":
                asm.emit(ALU_AND_K, word_mask)
            asm.emit(JEQ_K, word, false=fail)
        elif last:  # LT / GT on the deciding word
            if op == "LT":
                asm.emit(JGE_K, word, true=fail, false=passed)
            else:
                asm.emit(JGT_K, word, true=passed, false=fail)
        else:  # the high word: strictly less / greater decides
            decided_ok, decided_bad = (passed, fail) if op == "GT" else (fail, passed)
            asm.emit(JGT_K, word, true=decided_ok)
            asm.emit(JEQ_K, word, false=decided_bad)
    asm.place(passed)


def program(entries: Sequence[Entry], tokens: Sequence[int], default: int) -> bytes | None:
    """The BPF program for ``entries`` on the ABIs ``tokens``; ``None`` if an
    ABI, the byte order or the table is beyond this compiler."""
    if sys.byteorder != "little" or not tokens or any(token not in AUDIT for token in tokens):
        return None
    sections: dict[int, dict[int, Decision]] = {}
    try:
        for token in tokens:
            audit, wide = AUDIT[token]
            table = decisions(entries, Abi(token, audit, wide), default)
            merged = sections.setdefault(audit, {})
            if set(merged) & set(table):
                raise Unsupported(f"two ABIs of arch {audit:#x} share numbers")
            merged.update(table)
    except Unsupported:
        return None
    asm = _Assembler()
    asm.emit(LD_W_ABS, ARCH_OFFSET)
    labels = {audit: asm.label() for audit in sections}
    for audit, label in labels.items():
        asm.emit(JEQ_K, audit, true=label)
    asm.emit(RET_K, RET_KILL_THREAD)  # libseccomp's default bad-arch action
    for audit, label in labels.items():
        asm.place(label)
        asm.emit(LD_W_ABS, NR_OFFSET)
        _section(asm, runs(sections[audit], default))
    return asm.assemble()
