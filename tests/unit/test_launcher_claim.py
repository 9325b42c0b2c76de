"""runtime/launcher/claim.py: a pooled child's hand-over over a real
SOCK_SEQPACKET pair and real stdio files, without a process."""

from __future__ import annotations

import dataclasses
import os
import select
import selectors
import socket
from pathlib import Path
from typing import Any

import pytest

from runtime import cgroups, pooled
from runtime.launcher import claim, pool, poolkeys
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
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(poolkeys.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, None)
        asked = claim.Claim("c1", SPEC, None, None, go, plug_after)
        paths = Paths(str(tmp_path / "out"), str(tmp_path / "err"))
        handed = claim.hand_over(p, None, warm, asked, paths, Stamps())
        assert handed is not None
        process, _stdio = handed
        _spec, _tty, received = pooled.receive(theirs.detach())
        assert received.started is started and received.wait_last is wait_last
        assert process.go_sent
        assert len(received.fds) == 3  # stdin, stdout, stderr
        assert warm.channel.fileno() < 0  # no parked veth: nothing more to send
        for fd in (*received.fds, pidfd, unused):
            os.close(fd)


def test_a_bridge_childs_etc_trees_follow_the_spec_then_its_veth_is_plugged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.launcher.plumbing import Parked
    from runtime.network.attachment import Attachment

    net = Attachment(mode="bridge", network="n", address="10.1.0.2/24", etc_dir="/s/c/1")
    spec = dataclasses.replace(SPEC, network=net)
    trees = [os.pipe() for _ in range(3)]
    monkeypatch.setattr(pooled, "etc_trees", lambda s: [w for _, w in trees])
    plugged: list[object] = []

    class Plumber:
        def plug_parked(self, parked: Parked, attachment: Attachment, defer: bool) -> None:
            plugged.append((attachment, defer))

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd, unused = os.pipe()
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(poolkeys.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, None)
        warm.parked = Parked(4, 2, None)  # type: ignore[arg-type]
        asked = claim.Claim("c1", spec, None, None, True, True)
        paths = Paths(str(tmp_path / "out"), str(tmp_path / "err"))
        handed = claim.hand_over(p, None, warm, asked, paths, Stamps())
        assert handed is not None and warm.channel.fileno() >= 0  # kept for the trees
        claim.plug(p, Plumber(), warm, spec, handed[1])  # type: ignore[arg-type]
        assert plugged == [(net, False)] and warm.channel.fileno() < 0
        child_end = theirs.detach()
        _spec, _tty, received = pooled.receive(child_end)
        got = pooled.receive_trees(child_end, 3)
        assert [os.fstat(fd).st_ino for fd in got] == [os.fstat(r).st_ino for r, _ in trees]
        for fd in (*received.fds, *got, child_end, pidfd, unused, *(r for r, _ in trees)):
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
            poolkeys.Template(SPEC, 1),
            1,
            pidfd,
            None,
            ours,
            unused,
            -1,
            POOLED,
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
