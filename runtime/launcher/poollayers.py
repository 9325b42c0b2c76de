"""The warm pool's overlay layer dirs (runtime/launcher/pool.py).

    PoolLayers
    ├── make(spec, name)   a pooled overlay child's own dir, ``root/`` and
    │                      ``rw/`` in it, and its template with that dir
    ├── move(layer, plan)  at the claim: its ``rw/upper`` and ``rw/work``
    │                      renamed into the container's layer dir
    ├── remove(layer)      an unclaimed child's dir, with what it holds
    ├── remove_spent()     the dirs claims emptied (at the next fill)
    └── sweep()            at start-up: what a dead launcher left

A pooled overlay child mounts its overlay at the fill, in its own mount
namespace, with a fresh upper and work dir in a dir of the pool's
(``<state>/pool/children/pool-<launcher pid>-<n>``), on the state dir's file
system as the containers' layer dirs are.  The claim renames both into the
container's ``layer/rw/``: rename(2) replaces an empty directory and keeps
the inode, so the mounted overlay goes on writing into it (overlayfs holds
its upper dir's dentry, not its path), and everything that reads a
container's writable layer from the host by path (``docker diff``, commit,
the disk usage, archives of a stopped container, auto-remove) finds it
where a cold child would have put it.  The mount's options in the
container's /proc/self/mountinfo still name the pool's dir, which nothing reads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from runtime.spec import LAYER_ROOT, LAYER_RW, ContainerSpec, RootfsPlan

#: The children's dirs, under the state dir.
POOL_LAYERS = ("pool", "children")

#: What a claim moves, work first: an upper dir moved alone still holds
#: nothing the container wrote (the claim's spec has not gone out yet).
MOVED = ("work", "upper")


class PoolLayers:
    def __init__(self, path: str) -> None:
        self.path = path
        #: Dirs of claimed children, emptied by their claim: removed off the
        #: critical path (``remove_spent``, at the next fill).
        self.spent: list[str] = []

    def make(self, spec: ContainerSpec, name: str) -> tuple[ContainerSpec, str]:
        """``spec`` with its root planned in a new dir of the pool's, and
        that dir; the child makes ``rw/upper`` and ``rw/work`` in it when it
        mounts the overlay (runtime/rootfs.py), as a cold child does in the
        container's layer dir."""
        assert spec.rootfs is not None
        layer = os.path.join(self.path, name)
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        os.mkdir(layer, 0o700)
        try:
            for sub in (LAYER_ROOT, LAYER_RW):
                os.mkdir(os.path.join(layer, sub), 0o700)
        except BaseException:
            self.remove(layer)
            raise
        plan = dataclasses.replace(spec.rootfs, root=os.path.join(layer, LAYER_ROOT), layer=layer)
        return dataclasses.replace(spec, rootfs=plan), layer

    def move(self, layer: str, plan: RootfsPlan | None) -> None:
        """The child's upper and work dirs become the container's
        (``plan.layer``'s ``rw/``, whose empty ``upper``/``work`` the API
        made: rename(2) replaces an empty directory)."""
        assert plan is not None and plan.layer is not None
        rw = os.path.join(plan.layer, LAYER_RW)
        if not os.path.isdir(rw):
            os.makedirs(rw, mode=0o700)
        for name in MOVED:
            os.rename(os.path.join(layer, LAYER_RW, name), os.path.join(rw, name))
        self.spent.append(layer)

    def remove(self, layer: str) -> None:
        shutil.rmtree(layer, ignore_errors=True)

    def remove_spent(self) -> None:
        for layer in self.spent:
            self.remove(layer)
        self.spent.clear()

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
