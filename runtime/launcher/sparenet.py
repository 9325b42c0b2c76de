"""A network namespace made ahead, lo up, for the next cold container.

A cold clone with CLONE_NEWNET makes the namespace inside clone(2), while
the launcher waits (copy_net_ns: 0.5-0.7 ms on this machine, load 6), and
its lo must then be brought up (the kernel's dev_open of lo, ::1 and its
routes: 0.3-0.4 ms more) before the command runs.  Both can happen before
the request comes: when the loop finds nothing to do (as the pool fills,
runtime/launcher/pool.py), ``make`` creates one namespace with lo up and
keeps it as an fd; a cold launch whose container takes it (``take``) is
cloned without CLONE_NEWNET and its child joins it with setns(2) as its
first step (runtime/child.py, ``ChildFds.netns``).  Each namespace goes to
one container only; the launcher closes its fd after the clone.

Only for a container whose namespace nobody plugs into before its child
joined it: no bridge and no further network (the launcher moves a veth's
peer by the child's pid, runtime/launcher/plumbing.py), and no user
namespace (the namespace would belong to the host's, not the container's,
so its root could not administer it: user_namespaces(7)).  Anything else,
and a launch that finds none ready, makes its own as before.

How one is made: unshare(CLONE_NEWNET) moves the launcher's single thread
into a new namespace, an ioctl brings lo up there, /proc/thread-self/ns/net
keeps it, and setns(2) returns the thread to the namespace it started in
(network_namespaces(7)).  The launcher's own sockets are not affected: a
socket stays in the namespace it was made in.
"""

from __future__ import annotations

import logging
import os

from runtime import child, libc
from runtime.namespaces import Namespace
from runtime.network.attachment import NONE
from runtime.spec import ContainerSpec

log = logging.getLogger("mydocker.launcher")

_OWN = "/proc/thread-self/ns/net"


class SpareNet:
    """At most one namespace made ahead; ``usable`` is False once making one failed."""

    def __init__(self) -> None:
        self._spare = -1
        self.usable = True

    def wants(self) -> bool:
        return self.usable and self._spare < 0

    def make(self) -> None:
        """Make the spare (the loop calls this when it has nothing to do)."""
        if not self.wants():
            return
        try:
            self._spare = _made()
        except OSError as err:
            log.warning("no network namespace made ahead (%s): each launch makes its own", err)
            self.usable = False

    def take(self, spec: ContainerSpec) -> int:
        """The spare's fd for ``spec``'s child (the caller closes it after
        the clone), or -1: none ready, or ``spec`` cannot use one."""
        if self._spare < 0 or not fits(spec):
            return -1
        fd, self._spare = self._spare, -1
        return fd

    def close(self) -> None:
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1


def fits(spec: ContainerSpec) -> bool:
    """Whether ``spec``'s network namespace may be made ahead (module docstring)."""
    net = spec.network
    if net is not None and net.mode != NONE:
        return False
    return not spec.endpoints and spec.security.userns_host_id is None


def _made() -> int:
    own = os.open(_OWN, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.unshare(Namespace.NEWNET)
        try:
            child.loopback_up()
            return os.open(_OWN, os.O_RDONLY | os.O_CLOEXEC)
        finally:
            # Back, whatever happened: every socket the launcher opens later
            # (a bridge's netlink, published ports) belongs to the host's.
            libc.setns(own, Namespace.NEWNET)
    finally:
        os.close(own)
