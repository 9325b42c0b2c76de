"""runtime/lifecycle.py's pure parts: ps output, and the order of limit writes."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from runtime.lifecycle import limit_writes, parse_ps, tuning_writes
from runtime.spec import Limits

PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         500       1  0 10:01 ?        00:00:00 sleep 300
root         501     500  0 10:01 ?        00:00:00 sh -c echo a b
"""


def test_parse_ps_keeps_the_members_and_the_whole_command() -> None:
    top = parse_ps(PS, {500, 501})
    assert top.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    assert [row[1] for row in top.processes] == ["500", "501"]
    assert top.processes[1][-1] == "sh -c echo a b"


def test_parse_ps_without_a_pid_column_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="Couldn't find PID field") as caught:
        parse_ps("COMMAND\nsleep\n", {1})
    assert caught.value.field == "ps_args"


V1 = {"memory": "/m/c", "pids": "/p/c", "cpu": "/c/c", "cpuacct": "/c/c"}


def test_v1_memory_grows_memsw_first_and_shrinks_it_last() -> None:
    grow = limit_writes(V1, Limits(memory_bytes=100 << 20), Limits(memory_bytes=200 << 20))
    assert [p.rsplit("/", 1)[1] for p, _ in grow] == [
        "memory.memsw.limit_in_bytes",
        "memory.limit_in_bytes",
    ]
    shrink = limit_writes(V1, Limits(memory_bytes=200 << 20), Limits(memory_bytes=100 << 20))
    assert [p.rsplit("/", 1)[1] for p, _ in shrink] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]
    assert {v for _, v in shrink} == {str(100 << 20)}


def test_v1_pids_and_cpus() -> None:
    writes = limit_writes(V1, Limits(), Limits(pids=20, cpus=0.5))
    assert writes == [
        ("/p/c/pids.max", "20"),
        ("/c/c/cpu.cfs_period_us", "100000"),
        ("/c/c/cpu.cfs_quota_us", "50000"),
    ]


def test_v2_writes_the_unified_files() -> None:
    writes = limit_writes(
        {"": "/u/c"}, Limits(pids=5), Limits(memory_bytes=64 << 20, cpus=2, pids=5)
    )
    assert writes == [("/u/c/memory.max", str(64 << 20)), ("/u/c/cpu.max", "200000 100000")]


def test_nothing_changed_writes_nothing() -> None:
    assert limit_writes(V1, Limits(pids=3), Limits(pids=3)) == []


def test_tuning_writes_on_v1_and_v2() -> None:
    v1 = {"cpu": "/cg/cpu/c", "memory": "/cg/memory/c"}
    knobs = {"cpu_shares": 512, "memory_reservation_bytes": 1 << 20}
    assert tuning_writes(v1, knobs) == [
        ("/cg/cpu/c/cpu.shares", "512"),
        ("/cg/memory/c/memory.soft_limit_in_bytes", str(1 << 20)),
    ]
    # v2: runc's shares -> weight (2..262144 onto 1..10000).
    assert tuning_writes({"": "/cg/c"}, {"cpu_shares": 1024}) == [("/cg/c/cpu.weight", "39")]
    assert tuning_writes({"": "/cg/c"}, {"cpu_shares": 2}) == [("/cg/c/cpu.weight", "1")]
