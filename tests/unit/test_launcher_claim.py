"""runtime/launcher/claim.py: a pooled child's hand-over over a real
SOCK_SEQPACKET pair and real stdio files, without a process."""

from __future__ import annotations

import os
import select
import selectors
import socket
from pathlib import Path
from typing import Any

import pytest

from runtime import cgroups, pooled
from runtime.launcher import claim, pool
from runtime.launcher.stdio import Paths
from runtime.launchtrace import Stamps
from runtime.spec import ContainerSpec, RootfsPlan

SPEC = ContainerSpec(command=("true",), hostname="c", rootfs=RootfsPlan(root="/r", layer="/l"))


@pytest.mark.parametrize(
    ("go", "plug_after", "started", "wait_last"),
    [
        (True, False, True, False),
        (True, True, True, True),  # waits for the plug at its last step
        (False, False, False, False),
        (False, True, False, False),  # created: waits for ``start`` first
    ],
)
def test_a_child_with_a_veth_to_plug_waits_for_the_joined_byte(
    tmp_path: Path, go: bool, plug_after: bool, started: bool, wait_last: bool
) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd, unused = os.pipe()
    extra_read, extra_write = os.pipe()
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(pool.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, None)
        asked = claim.Claim("c1", SPEC, None, None, go, plug_after)
        paths = Paths(str(tmp_path / "out"), str(tmp_path / "err"))
        handed = claim.hand_over(p, None, warm, asked, paths, Stamps(), (extra_write,))
        assert handed is not None
        process, _stdio = handed
        _spec, _tty, received = pooled.receive(theirs.detach())
        assert received.started is started and received.wait_last is wait_last
        assert process.go_sent
        # The stdio fds first (stdin, stdout, stderr), then the extra ones.
        assert len(received.fds) == 4
        assert os.path.samestat(os.fstat(received.fds[3]), os.fstat(extra_write))
        for fd in (*received.fds, pidfd, unused, extra_read, extra_write):
            os.close(fd)


POOLED: Any = object()
RENAMED: Any = object()


class RecordingManager:
    """Records the cgroup calls of a hand-over, and whether the child's
    channel held its spec at each (``pending``)."""

    def __init__(self, pending, fail_rename: bool = False) -> None:
        self.pending = pending
        self.fail_rename = fail_rename
        self.calls: list[tuple[str, bool]] = []

    def adopt(self, cgroup, limits) -> None:
        self.calls.append(("adopt", self.pending()))

    def rename(self, cgroup, name):
        self.calls.append(("rename", self.pending()))
        if self.fail_rename:
            raise cgroups.CgroupError(f"{name}: File exists")
        return RENAMED


@pytest.mark.parametrize("fail_rename", [False, True])
def test_limits_and_names_go_before_the_spec(tmp_path: Path, fail_rename: bool) -> None:
    """A started child waits for nothing once it has its spec: its limits
    are written and its cgroups named for its container before.  A name
    taken by a leftover keeps the pool's names and the launch."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd, unused = os.pipe()
    parent = tmp_path / "devices"
    (parent / "pool-1-1").mkdir(parents=True)
    if fail_rename:
        (parent / "c1" / "taken").mkdir(parents=True)

    def pending() -> bool:
        return bool(select.select([theirs], [], [], 0)[0])

    manager = RecordingManager(pending, fail_rename)
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(
            pool.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, POOLED,
            str(parent / "pool-1-1"),
        )
        asked = claim.Claim("c1", SPEC, None, None, True)
        paths = Paths(str(tmp_path / "out"), str(tmp_path / "err"))
        handed = claim.hand_over(p, manager, warm, asked, paths, Stamps())  # type: ignore[arg-type]
        assert handed is not None
        process, _stdio = handed
    assert manager.calls == [("adopt", False), ("rename", False)]
    if fail_rename:
        assert warm.cgroup is POOLED
        assert process.devices_cgroup == str(parent / "pool-1-1")
    else:
        assert warm.cgroup is RENAMED
        assert process.devices_cgroup == str(parent / "c1")
    _spec, _tty, received = pooled.receive(theirs.detach())
    assert received.started and not received.wait_last
    for fd in (*received.fds, pidfd, unused):
        os.close(fd)
