"""runtime/pooled.py: a pooled child runs the same named steps as a cold
one (runtime/child.py), split at the spec: none lost, none added."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import pytest

from runtime import child, pooled
from runtime.spec import ContainerSpec, Mount, RootfsPlan, Security

PLAN = RootfsPlan(
    root="/s/pool/layer/root",
    layer="/s/pool/layer",
    binds=("/usr", "/etc"),
    links=(("/bin", "usr/bin"),),
    masks=("/etc/shadow",),
    hide=("/s",),
)
FDS = child.ChildFds(10, 11, 0, 1, 2)


def spec(**changes: object) -> ContainerSpec:
    base: dict[str, object] = {
        "command": ("true",),
        "hostname": "h",
        "workdir": "/work",
        "rootfs": PLAN,
        "security": Security(uid=1000, gid=1000),
    }
    return ContainerSpec(**{**base, **changes})  # type: ignore[arg-type]


def names(steps: Sequence[tuple[str, object]]) -> list[str]:
    return [name for name, _ in steps]


def test_fill_then_claim_are_the_cold_steps_with_the_spec_dependent_ones_last() -> None:
    container = spec()
    cold = names(child._steps(container, FDS))
    warm = names(pooled.fill_steps(spec(workdir="/", hostname="pool"))) + names(
        pooled.claim_steps(container, FDS, None, started=False)
    )
    # lo: a pooled child brings it up itself, ahead of any launch; a cold
    # child's is the launcher's, while it builds its root (spawn.loopback_up).
    assert "bring up lo" not in cold
    cold.insert(cold.index("sethostname") + 1, "bring up lo")  # where a cold one had it
    assert sorted(warm) == sorted(cold)
    moved = ["sethostname", "create workdir /work", "make the root read-only"]
    assert [n for n in warm if n not in moved] == [n for n in cold if n not in moved]
    # Nothing of the spec before the claim: the fill knows only the template.
    fill = names(pooled.fill_steps(spec(workdir="/", hostname="pool")))
    assert not set(fill) & set(moved)
    assert fill[-1] == "bring up lo"


def test_the_claim_starts_with_the_spec_and_waits_for_a_later_start() -> None:
    created = names(pooled.claim_steps(spec(), FDS, None, started=False))
    assert created[0] == "sethostname"
    assert created.index("wait for the cgroup join") < created.index("set rlimits")
    assert created[-1] == "load seccomp filter"
    # Started at once: joined at the fill, limited before the claim; no wait.
    started = names(pooled.claim_steps(spec(), FDS, None, started=True))
    assert started == [n for n in created if n != "wait for the cgroup join"]


def test_a_claim_message_carries_the_spec_and_fds_across_a_seqpacket() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_end, write_end = os.pipe()
    try:
        container = spec(mounts=(Mount("tmpfs", "/scratch"),))
        message = pooled.claim_message(container, (24, 80), started=True)
        socket.send_fds(ours, [message], [write_end])
        channel = theirs.detach()
        got, tty_size, claim = pooled.receive(channel)
        os.close(channel)
        assert got == container and tty_size == (24, 80) and claim.started
        fds = claim.fds
        assert len(fds) == 1 and os.path.samestat(os.fstat(fds[0]), os.fstat(write_end))
        os.close(fds[0])
    finally:
        ours.close()
        os.close(read_end)
        os.close(write_end)


def test_a_bridge_claim_attaches_the_networks_etc_files_before_the_root_goes_read_only() -> None:
    from runtime.network.attachment import Attachment

    net = Attachment(mode="bridge", network="n", address="10.1.0.2/24", etc_dir="/s/c/1")
    container = spec(network=net)
    mounts = pooled.network_mounts(container)
    assert [(m.target, m.source, m.read_only) for m in mounts] == [
        ("/etc/resolv.conf", "/s/c/1/resolv.conf", True),
        ("/etc/hosts", "/s/c/1/hosts", True),
        ("/etc/hostname", "/s/c/1/hostname", True),
    ]
    steps = names(pooled.claim_steps(container, FDS, None, etc=lambda: (20, 21, 22)))
    attached = ["mount /etc/resolv.conf", "mount /etc/hosts", "mount /etc/hostname"]
    # No netlink work of its own: the launcher configures eth0 meanwhile
    # (runtime/launcher/plumbing.py ``plug_parked``).
    assert steps[:5] == ["sethostname", "receive the /etc trees", *attached]
    assert not any("eth0" in step for step in steps)
    assert steps.index("mount /etc/hostname") < steps.index("make the root read-only")
    # The cold child mounts the same files (from the paths, before pivot_root).
    assert set(attached) <= set(names(child._steps(container, FDS)))
    assert pooled.network_mounts(spec()) == ()
    assert pooled.MAX_CLAIM_FDS == 3  # the trees come in a message of their own


def test_the_etc_trees_come_in_a_second_message_and_must_be_all_there() -> None:
    from runtime.network.attachment import Attachment

    net = Attachment(mode="bridge", network="n", address="10.1.0.2/24", etc_dir="/s/c/1")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pipes = [os.pipe() for _ in range(3)]
    pooled.send_trees(ours, [w for _, w in pipes[:2]])  # one short
    steps = dict(
        pooled.claim_steps(
            spec(network=net), FDS, None, etc=lambda: pooled.receive_trees(theirs.fileno(), 3)
        )
    )
    with pytest.raises(OSError, match="2 /etc trees for 3 files"):
        steps["receive the /etc trees"]()
    pooled.send_trees(ours, [w for _, w in pipes])
    got = pooled.receive_trees(theirs.fileno(), 3)
    assert [os.fstat(fd).st_ino for fd in got] == [os.fstat(w).st_ino for _, w in pipes]
    for fd in (*got, *(end for pipe in pipes for end in pipe)):
        os.close(fd)
    ours.close()
    with pytest.raises(OSError, match="no /etc trees"):  # the launcher died meanwhile
        pooled.receive_trees(theirs.fileno(), 3)
    theirs.close()


def test_a_started_claim_with_a_veth_to_plug_waits_last_and_keeps_its_sync_pipe() -> None:
    first = names(pooled.claim_steps(spec(), FDS, None, started=False))
    last = pooled.claim_steps(spec(), FDS, None, started=True, wait_last=True)
    assert names(last) == [n for n in first if n != "wait for the cgroup join"] + [
        "wait for the cgroup join"
    ]
    assert "close fds" in dict(last)
    read_end, write_end = os.pipe()
    extra = os.dup(write_end)
    kept = child.ChildFds(read_end, write_end, 0, 1, 2)
    steps = dict(pooled.claim_steps(spec(), kept, None, started=True, wait_last=True))
    pid = os.fork()
    if pid == 0:  # the close runs in a child of the test, as in a pooled child
        steps["close fds"]()
        alive = [fd for fd in (read_end, write_end, extra) if _open(fd)]
        os._exit(0 if alive == [read_end, write_end] else 1)
    _, status = os.waitpid(pid, 0)
    for fd in (read_end, write_end, extra):
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
