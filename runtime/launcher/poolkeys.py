"""What a pooled child can serve: a template, and the key a spec must share with it.

    Template      a spec to keep ``size`` children warm for (the API's ``Pool`` op)
    key(spec)     what a pooled child must share with ``spec`` to serve it, or
                  None: no pooled child can (the cold path)
    fits(t, s)    a child of template key ``t`` serves spec key ``s``
    bridged, image_of, VIEW, WHOLE, PROGRAM, BRIDGED
                  the parts of a key the pool reads (runtime/launcher/pool.py:
                  a bridge template added at the first bridge miss, a template
                  following a changed host view)

The key is a tuple so that equal keys are the common, cheap case; ``fits``
allows the two differences that do not matter: a child without the whole root
for a spec that may share it, and no seccomp program asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from dataclasses import dataclass

from runtime.images.viewtrees import shareable
from runtime.network.attachment import BRIDGE, HOST, Attachment
from runtime.options import Options
from runtime.security import seccomp
from runtime.spec import ContainerSpec

NO_OPTIONS = Options()

#: A bridge template's network: its children get a parked veth once ready.
BRIDGE_READY = Attachment(mode=BRIDGE)

Key = Hashable


def key(spec: ContainerSpec) -> Key | None:
    """What a pooled child must share with ``spec`` to serve it; None when
    no pooled child can (the cold path)."""
    plan = spec.rootfs
    if plan is None or spec.mounts or spec.security.userns_host_id is not None:
        return None
    if spec.init:
        return None  # tini is bound into /dev by the root's steps (runtime/init.py)
    if spec.options != NO_OPTIONS:
        # Shared namespaces, devices, cgroup tuning, ulimits, groups
        # (runtime/options.py): not applied to a pooled child yet.
        return None
    net = spec.network
    if spec.endpoints or net is not None and net.mode == HOST:
        return None  # a second network (eth1); the host's namespace
    bridged = net is not None and net.bridged
    if net is not None and bridged and not (net == BRIDGE_READY or net.connected):
        return None  # a first network disconnected: only lo, but recorded
    if plan.read_only:
        return None  # a tmpfs under the overlay's upper dir: templates have none
    sec = spec.security
    program = (
        frozenset(sec.capabilities) & seccomp.RELEVANT_CAPABILITIES
        if sec.seccomp == "default"
        else None  # no filter: any child will do (matched as a wildcard below)
    )
    # The root's fields (``VIEW``: the image by id, so that any name of it
    # fits; the host view's paths, or the overlay's lower dirs), whether the
    # child may take one copy of the whole root (``shareable``: what a cold
    # child of the same spec gets, runtime/images/viewtrees.py), the seccomp
    # program, and whether it is on a bridge (a child with a parked veth, or
    # one with only lo).
    view = (plan.binds, plan.links, plan.masks, plan.hide, plan.lower, plan.more_lowers)
    return (spec.image_id or spec.image, *view, shareable(spec), program, bridged)


#: The part of a key that says which root a child holds (``_follow``).
VIEW = slice(0, 7)
#: Where a key says whether its child holds the whole root as one copy.
WHOLE = 7
#: Where a key says which seccomp program its child holds.
PROGRAM = 8
#: Where a key says whether its child is on a bridge.
BRIDGED = 9


def bridged(k: Key | None) -> bool:
    return isinstance(k, tuple) and bool(k[BRIDGED])


def image_of(k: Key | None) -> object:
    """The image (id, or name) a key is of."""
    return k[0] if isinstance(k, tuple) else None


def fits(template_key: Key, spec_key: Key) -> bool:
    """A child of ``template_key`` serves ``spec_key``: the same view; a
    child with the whole root only a spec that may share it; the same
    seccomp program, or none asked for."""
    if template_key == spec_key:
        return True
    assert isinstance(template_key, tuple) and isinstance(spec_key, tuple)
    if template_key[VIEW] != spec_key[VIEW] or template_key[BRIDGED] != spec_key[BRIDGED]:
        return False
    if template_key[WHOLE] and not spec_key[WHOLE]:
        return False
    return spec_key[PROGRAM] is None or template_key[PROGRAM] == spec_key[PROGRAM]


@dataclass(frozen=True)
class Template:
    """A spec to keep ``size`` children warm for (the API's ``Pool`` op)."""

    spec: ContainerSpec
    size: int

    @functools.cached_property
    def key(self) -> Key | None:
        """``key(spec)``, once: the loop asks for it at every turn."""
        return key(self.spec)
