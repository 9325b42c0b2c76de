"""What a pooled child runs: its root built ahead of demand, its spec later.

The warm pool (runtime/launcher/pool.py) clones children before any request
names them.  Each runs ``run`` on the launcher's stack, in two halves:

1. *filled* (no spec yet, only the pool's template): close every fd it
   inherited but its own three, join the cgroups the launcher made for it
   (itself: the join's wait in the kernel holds no one else), then the
   spec-independent steps of a cold child (runtime/child.py): "make mounts
   private", the root up to and including the masks
   (``rootfs.prepared_steps``), ``lo`` up; send ``READY_BYTE`` on the
   channel and block on it;
2. *claimed*: one SOCK_SEQPACKET message on the channel carries the
   container's spec and tty size (pickled: the launcher and this child are
   the same program, and nothing else holds the socket) and, as SCM_RIGHTS
   (unix(7)), the container's stdio fds, and on a bridge network its /etc
   files as detached read-only mounts (``etc_trees``: the launcher's
   open_tree(2) copies, since the paths in the state dir are out of reach
   after pivot_root).  Then only what depends on the spec: on a bridge,
   eth0's MAC, MTU, address and route (``configure_eth0``, while the
   launcher plugs the veth's host end), the hostname, those /etc files, the
   workdir, the read-only remount, and the cold
   child's own ``released_steps`` to execve (the wait for the joined byte
   only for a container created now and started later).

A failed step is reported on the error pipe with its name, exactly as in a
cold child.  EOF on the sync pipe or the channel (the launcher died, or
drained the pool) ends the child quietly: nobody is left to run it for.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime import child, init, libc, rootfs
from runtime.child import ChildFds, SetupError
from runtime.launcher.poollayers import PoolLayers
from runtime.network import netlink
from runtime.network.attachment import CONTAINER_IFNAME, ETC_FILES, Attachment
from runtime.spec import ContainerSpec, Mount

Step = tuple[str, Callable[[], None]]

READY_BYTE = b"R"
#: The claim message's payload: the pickled spec and tty size (a few KiB).
MAX_CLAIM_BYTES = 1 << 20
#: fds a claim carries: stdin, stdout, stderr, or with a tty the console
#: socket; then a bridge network's /etc files.
MAX_CLAIM_FDS = 3 + len(ETC_FILES)


def fill_steps(template: ContainerSpec, view: Mapping[str, int] | None = None) -> list[Step]:
    """What a pooled child does before it has a spec: the same steps, in the
    same order, as a cold child of ``template`` up to its user mounts
    (``view``: the launcher's copies of the host view's trees, as for a
    cold child, runtime/images/viewtrees.py)."""
    plan = template.rootfs
    assert plan is not None
    # An overlay child's layer dir is its own, in the pool's dir
    # (runtime/launcher/poollayers.py): made here, off the launcher's loop.
    own: list[Step] = []
    if plan.lower is not None:
        own.append(("make the pooled layer dir", lambda: PoolLayers.make_dirs(plan)))
    return [
        *own,
        ("make mounts private", lambda: libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)),
        *rootfs.prepared_steps(template, view),
        ("bring up lo", child.loopback_up),
    ]


def claim_steps(
    spec: ContainerSpec,
    fds: ChildFds,
    tty_size: tuple[int, int] | None,
    started: bool = False,
    etc: tuple[int, ...] = (),
    wait_last: bool = False,
) -> list[Step]:
    """What a claimed child does with its spec, up to execve.  ``started``
    (a create that runs at once): the launcher has nothing left to do
    before the command runs (the child joined its cgroups at the fill),
    so the child does not wait for the joined byte; a created container
    waits for it, which ``start`` sends.  ``etc``: the detached mounts of
    ``network_mounts(spec)``, attached over their targets.  ``wait_last``
    (a started one whose veth the launcher plugs meanwhile): the wait for
    the joined byte moves to the last step before execve, so that the plug
    overlaps the rest; "close fds" keeps the sync pipe (close-on-exec) for it."""
    released = child.released_steps(spec, fds, tty_size)
    wait = released[0]
    assert wait[0] == "wait for the cgroup join"
    if started or wait_last:
        released = released[1:]
    if wait_last:
        keep = (fds.error_write, fds.sync_read)
        released = [
            (name, (lambda: _close_inherited(keep)) if name == "close fds" else action)
            for name, action in released
        ] + [wait]
    net = spec.network
    bridged = net is not None and net.connected
    return [
        *([("configure eth0", lambda: configure_eth0(net))] if net and bridged else []),
        ("sethostname", lambda: socket.sethostname(spec.hostname)),
        *[(f"mount {m.target}", _attach(fd, m.target)) for m, fd in _paired(spec, etc)],
        *rootfs.finishing_steps(spec),
        *released,
    ]


def configure_eth0(net: Attachment) -> None:
    """A bridge template's child, claimed: its eth0 (parked at the fill, up
    without carrier: runtime/launcher/plumbing.py) gets its MAC (a veth
    takes one while up), MTU, address and default route in one sendmsg on
    a socket of its own namespace, while the launcher puts the host end on
    the bridge; a route through a link without carrier is taken, marked
    linkdown until the carrier comes.  The child's CPU, not the launcher's
    loop, which reads other launches meanwhile.  ``net.mtu`` is its bridge's
    (the service makes its bridges with it)."""
    with netlink.Netlink() as inside:
        peer = netlink.get_link(inside, CONTAINER_IFNAME).index
        for extra in net.link_local:  # Docker's LinkLocalIPs
            netlink.add_address(inside, peer, extra)
        netlink.configure_parked(inside, peer, net.interface, net.gateway, net.mac, net.mtu)


def join(procs: tuple[str, ...]) -> None:
    """Join the pool's cgroups: cgroups(7), writing 0 to ``cgroup.procs``
    moves the writing process."""
    for path in procs:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def run(template: ContainerSpec, fds: ChildFds, channel: int, procs: tuple[str, ...]) -> int:
    """The pooled child's body; never returns normally.  ``procs``: the
    ``cgroup.procs`` files of the cgroups it joins first."""
    # Nothing may close an fd by garbage collection from here on: the numbers
    # of fds closed below are reused by the fds a claim brings.
    gc.disable()
    try:
        view = fds.view or {}
        _close_inherited(keep=(fds.sync_read, fds.error_write, channel, *view.values()))
        filling = fill_steps(template, fds.view)
        child.run_named([("join the pool's cgroups", lambda: join(procs)), *filling])
        os.write(channel, READY_BYTE)
        spec, tty_size, released = receive(channel)
    except SetupError as err:
        child.report(fds.error_write, err)
        os._exit(err.exit_code)
    except BaseException:  # noqa: BLE001 - the child must never unwind into glibc
        os._exit(child.EXIT_SETUP_FAILED)
    count = len(released.fds) - len(network_mounts(spec))
    stdio, etc = released.fds[:count], tuple(released.fds[count:])
    if len(stdio) == 1:
        claimed = ChildFds(fds.sync_read, fds.error_write, -1, -1, -1, console=stdio[0])
    else:
        claimed = ChildFds(fds.sync_read, fds.error_write, stdio[0], stdio[1], stdio[2])
    argv, environ = init.argv(spec), spec.environ()
    steps = claim_steps(
        spec, claimed, tty_size, started=released.started, etc=etc, wait_last=released.wait_last
    )
    child.run_steps(steps, argv, environ, fds.error_write)
    return child.EXIT_SETUP_FAILED  # not reached


@dataclass(frozen=True)
class Claim:
    """What a claim brings besides the spec: the stdio fds, and whether the
    container starts at once."""

    fds: list[int]
    started: bool
    #: Wait for the joined byte last, not first (``claim_steps``).
    wait_last: bool = False


def receive(channel: int) -> tuple[ContainerSpec, tuple[int, int] | None, Claim]:
    """The claim: spec, tty size, stdio fds; EOF (no claim will come) exits."""
    sock = socket.socket(fileno=channel)
    data, received, _flags, _addr = socket.recv_fds(sock, MAX_CLAIM_BYTES, MAX_CLAIM_FDS)
    sock.detach()
    if not data:
        os._exit(child.EXIT_SETUP_FAILED)
    spec, tty_size, started, wait_last = pickle.loads(data)
    return spec, tty_size, Claim(list(received), started, wait_last)


def claim_message(
    spec: ContainerSpec,
    tty_size: tuple[int, int] | None,
    started: bool,
    wait_last: bool = False,
) -> bytes:
    """The launcher's side of ``receive``."""
    return pickle.dumps((spec, tty_size, started, wait_last), protocol=pickle.HIGHEST_PROTOCOL)


def network_mounts(spec: ContainerSpec) -> tuple[Mount, ...]:
    """The network's /etc files (read-only binds): a pooled spec has no
    other mounts (launcher/pool.py: ``key``)."""
    return spec.all_mounts()[len(spec.mounts) :]


def etc_trees(spec: ContainerSpec) -> list[int]:
    """The launcher's side of the /etc files: a detached, read-only copy of
    each (open_tree_attr(2): one call each where the kernel has it, else
    open_tree(2) and mount_setattr(2)), in ``network_mounts`` order."""
    trees: list[int] = []
    try:
        for mount in network_mounts(spec):
            assert mount.source is not None
            trees.append(
                libc.open_tree(mount.source, recursive=False, attr_set=libc.MOUNT_ATTR_RDONLY)
            )
    except BaseException:
        for fd in trees:
            os.close(fd)
        raise
    return trees


def _paired(spec: ContainerSpec, etc: tuple[int, ...]) -> list[tuple[Mount, int]]:
    """Each network mount with its tree; ``run`` took as many trees off the
    claim's fds as there are mounts, so none is left over."""
    return list(zip(network_mounts(spec), etc, strict=True))


def _attach(fd: int, target: str) -> Callable[[], None]:
    def attach() -> None:
        try:
            # An image without the file (busybox has no /etc/hosts): made
            # in its root first, as the cold path's user mounts do.
            rootfs.ensure_target(target, is_dir=False)
            libc.move_mount(fd, target)
        finally:
            os.close(fd)

    return attach


def _close_inherited(keep: tuple[int, ...]) -> None:
    """Close every fd of the launcher's the child inherited (its clients'
    sockets, the listener, other children's pipes and pidfds): a pooled
    child lives long, and a copy of the listener or of a sibling's sync
    pipe would keep them open after the launcher died.  0/1/2 stay until
    the claim's stdio replaces them."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
