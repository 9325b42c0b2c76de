"""What a pooled child runs: its root built ahead of demand, its spec later.

The warm pool (runtime/launcher/pool.py) clones children before any request
names them.  Each runs ``run`` on the launcher's stack, in two halves:

1. *filled* (no spec yet, only the pool's template): close every fd it
   inherited but its own three, then the spec-independent steps of a cold
   child (runtime/child.py): "make mounts private", the root up to and
   including the masks (``rootfs.prepared_steps``), ``lo`` up; wait for the
   launcher's joined byte (it joined the child to the pool's cgroups
   meanwhile); send ``READY_BYTE`` on the channel and block on it;
2. *claimed*: one SOCK_SEQPACKET message on the channel carries the
   container's spec and tty size (pickled: the launcher and this child are
   the same program, and nothing else holds the socket) and, as SCM_RIGHTS
   (unix(7)), the container's stdio fds.  Then only what depends on the
   spec: the hostname, the workdir, the read-only remount, and the cold
   child's own ``released_steps`` from the wait for the joined byte (the
   launcher's release) to execve.

A failed step is reported on the error pipe with its name, exactly as in a
cold child.  EOF on the sync pipe or the channel (the launcher died, or
drained the pool) ends the child quietly: nobody is left to run it for.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
from collections.abc import Callable

from runtime import child, libc, rootfs
from runtime.child import ChildFds, SetupError
from runtime.spec import ContainerSpec

Step = tuple[str, Callable[[], None]]

READY_BYTE = b"R"
#: The claim message's payload: the pickled spec and tty size (a few KiB).
MAX_CLAIM_BYTES = 1 << 20
#: fds a claim carries: stdin, stdout, stderr, or with a tty the console socket.
MAX_CLAIM_FDS = 3


def fill_steps(template: ContainerSpec) -> list[Step]:
    """What a pooled child does before it has a spec: the same steps, in the
    same order, as a cold child of ``template`` up to its user mounts."""
    return [
        ("make mounts private", lambda: libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)),
        *rootfs.prepared_steps(template),
        ("bring up lo", child.loopback_up),
    ]


def claim_steps(spec: ContainerSpec, fds: ChildFds, tty_size: tuple[int, int] | None) -> list[Step]:
    """What a claimed child does with its spec, up to execve."""
    return [
        ("sethostname", lambda: socket.sethostname(spec.hostname)),
        *rootfs.finishing_steps(spec),
        *child.released_steps(spec, fds, tty_size),
    ]


def run(template: ContainerSpec, fds: ChildFds, channel: int) -> int:
    """The pooled child's body; never returns normally."""
    # Nothing may close an fd by garbage collection from here on: the numbers
    # of fds closed below are reused by the fds a claim brings.
    gc.disable()
    try:
        _close_inherited(keep=(fds.sync_read, fds.error_write, channel))
        child.run_named(fill_steps(template))
        child.wait_for_joined(fds.sync_read)
        os.write(channel, READY_BYTE)
        spec, tty_size, stdio = receive(channel)
    except SetupError as err:
        child.report(fds.error_write, err)
        os._exit(err.exit_code)
    except BaseException:  # noqa: BLE001 - the child must never unwind into glibc
        os._exit(child.EXIT_SETUP_FAILED)
    if len(stdio) == 1:
        claimed = ChildFds(fds.sync_read, fds.error_write, -1, -1, -1, console=stdio[0])
    else:
        claimed = ChildFds(fds.sync_read, fds.error_write, *stdio)
    argv, environ = list(spec.command), spec.environ()
    child.run_steps(claim_steps(spec, claimed, tty_size), argv, environ, fds.error_write)
    return child.EXIT_SETUP_FAILED  # not reached


def receive(channel: int) -> tuple[ContainerSpec, tuple[int, int] | None, list[int]]:
    """The claim: spec, tty size, stdio fds; EOF (no claim will come) exits."""
    sock = socket.socket(fileno=channel)
    data, received, _flags, _addr = socket.recv_fds(sock, MAX_CLAIM_BYTES, MAX_CLAIM_FDS)
    sock.detach()
    if not data:
        os._exit(child.EXIT_SETUP_FAILED)
    spec, tty_size = pickle.loads(data)
    return spec, tty_size, list(received)


def claim_message(spec: ContainerSpec, tty_size: tuple[int, int] | None) -> bytes:
    """The launcher's side of ``receive``."""
    return pickle.dumps((spec, tty_size), protocol=pickle.HIGHEST_PROTOCOL)


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
