"""runtime/launcher/claim.py: a pooled child's hand-over over a real
SOCK_SEQPACKET pair and real stdio files, without a process."""

from __future__ import annotations

import dataclasses
import os
import selectors
import socket
from pathlib import Path

import pytest

from runtime import pooled
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
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(pool.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, None)
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
        def plug_parked(self, parked: Parked, attachment: Attachment) -> None:
            plugged.append(attachment)

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd, unused = os.pipe()
    with selectors.DefaultSelector() as selector:
        p = pool.Pool(selector, None)
        warm = pool.Warm(pool.Template(SPEC, 1), 1, pidfd, None, ours, unused, -1, None)
        warm.parked = Parked(4, 2, None)  # type: ignore[arg-type]
        asked = claim.Claim("c1", spec, None, None, True, True)
        paths = Paths(str(tmp_path / "out"), str(tmp_path / "err"))
        handed = claim.hand_over(p, None, warm, asked, paths, Stamps())
        assert handed is not None and warm.channel.fileno() >= 0  # kept for the trees
        claim.plug(p, Plumber(), warm, spec, handed[1])  # type: ignore[arg-type]
        assert plugged == [net] and warm.channel.fileno() < 0
        child_end = theirs.detach()
        _spec, _tty, received = pooled.receive(child_end)
        got = pooled.receive_trees(child_end, 3)
        assert [os.fstat(fd).st_ino for fd in got] == [os.fstat(r).st_ino for r, _ in trees]
        for fd in (*received.fds, *got, child_end, pidfd, unused, *(r for r, _ in trees)):
            os.close(fd)
