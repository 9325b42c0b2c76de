"""runtime/launcher/claim.py: a pooled child's hand-over over a real
SOCK_SEQPACKET pair and real stdio files, without a process."""

from __future__ import annotations

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
