"""The warm pool's overlay layer dirs (runtime/launcher/pool.py).

    PoolLayers
    ├── make(spec, name)   a pooled overlay child's template with a dir of
    │                      its own, which the child makes (``make_dirs``):
    │                      ``root/`` and ``rw/`` in it
    ├── move(layer, plan)  at the claim: its ``rw/`` (``upper``, ``work``)
    │                      swapped into the container's layer dir, the
    │                      rest left in that dir as ``pool/``
    ├── fresh(plan)        whether a container's layer is unused yet (a
    │                      restart is not served by a pooled child)
    ├── remove(layer)      an unclaimed child's dir, with what it holds
    └── sweep()            at start-up: what a dead launcher left

A pooled overlay child mounts its overlay at the fill, in its own mount
namespace, with a fresh upper and work dir in a dir of the pool's
(``<state>/pool/children/pool-<launcher pid>-<n>``), on the state dir's file
system as the containers' layer dirs are.  The claim swaps that ``rw/``
with the container's ``layer/rw/`` (renameat2(2) ``RENAME_EXCHANGE``): a
rename keeps the inodes, so the mounted overlay goes on writing into them
(overlayfs holds its upper dir's dentry, not its path), and everything that
reads a container's writable layer from the host by path (``docker diff``,
commit, the disk usage, archives of a stopped container) finds it where a
cold child would have put it.  The child's dir, now holding the API's empty
``rw/``, is renamed to the container's ``layer/pool`` and goes with the
container (auto-remove, delete).  No directory is removed at a claim: an
rmdir(2), or a rename over an empty directory, took 4 ms on this machine's
ext4 (a plain rename 20 us), which would stall the launcher's loop.  The
mount's options in the container's /proc/self/mountinfo still name the
pool's dir, which nothing reads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from runtime import libc
from runtime.spec import LAYER_ROOT, LAYER_RW, ContainerSpec, RootfsPlan

#: The children's dirs, under the state dir.
POOL_LAYERS = ("pool", "children")

#: Where a claimed child's dir goes in the container's layer dir.
SPENT = "pool"


class PoolLayers:
    def __init__(self, path: str) -> None:
        self.path = path
        self._made = False

    def make(self, spec: ContainerSpec, name: str) -> tuple[ContainerSpec, str]:
        """``spec`` with its root planned in a new dir of the pool's, and
        that dir, which the child makes (``make_dirs``: a mkdir costs the
        launcher's loop 0.4 ms here) before it mounts its overlay with
        ``rw/upper`` and ``rw/work`` in it (runtime/rootfs.py), as a cold
        child does in the container's layer dir."""
        assert spec.rootfs is not None
        if not self._made:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            self._made = True
        layer = os.path.join(self.path, name)
        plan = dataclasses.replace(spec.rootfs, root=os.path.join(layer, LAYER_ROOT), layer=layer)
        return dataclasses.replace(spec, rootfs=plan), layer

    def move(self, layer: str, plan: RootfsPlan | None) -> None:
        """The child's ``rw/`` (its upper and work dirs) becomes the
        container's, swapped with the empty one the API made (or renamed
        there when it made none); then the child's dir goes into the
        container's layer dir, as ``SPENT``."""
        assert plan is not None and plan.layer is not None
        rw = os.path.join(plan.layer, LAYER_RW)
        if os.path.isdir(rw):
            libc.exchange(os.path.join(layer, LAYER_RW), rw)
        else:
            os.makedirs(plan.layer, mode=0o700, exist_ok=True)
            os.rename(os.path.join(layer, LAYER_RW), rw)
        os.rename(layer, os.path.join(plan.layer, SPENT))

    @staticmethod
    def fresh(plan: RootfsPlan) -> bool:
        """Whether the container of ``plan`` has not run yet: its upper dir
        empty or not made, and no claim's ``SPENT`` dir.  A restart keeps
        the layer it wrote, which a claim's swap would set aside."""
        assert plan.layer is not None
        if os.path.lexists(os.path.join(plan.layer, SPENT)):
            return False
        try:
            with os.scandir(os.path.join(plan.layer, LAYER_RW, "upper")) as entries:
                return next(entries, None) is None
        except FileNotFoundError:
            return True

    def remove(self, layer: str) -> None:
        shutil.rmtree(layer, ignore_errors=True)

    @staticmethod
    def make_dirs(plan: RootfsPlan) -> None:
        """The child's side of ``make``: its dir, ``root/`` and ``rw/``."""
        assert plan.layer is not None
        for path in (plan.layer, plan.root, os.path.join(plan.layer, LAYER_RW)):
            os.mkdir(path, 0o700)

    def sweep(self) -> int:
        """Remove every child's dir: at start-up, under the state dir's
        lock, they are a dead launcher's (its children exit on EOF); how many."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return 0
        for name in names:
            self.remove(os.path.join(self.path, name))
        return len(names)
