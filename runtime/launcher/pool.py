"""The warm pool: children cloned ahead of demand (docs/performance.md).

    Pool
    ├── configure(templates)  what to keep warm: a template spec and a count each
    ├── wants_fill()          fewer children than configured, and not given up
    ├── fill_due(idle)        whether the loop fills now: when a select found
    │                         nothing to do, or a claim took a child since the
    │                         last fill (its replacement is owed); not
    │                         within FILL_DELAY of a claim while every
    │                         template has a ready child (``fill_timeout``)
    ├── fill_one()            clone one child for a template (the loop calls it
    │                         after a turn's replies went out: off the
    │                         critical path of any request); the zygote
    │                         clones it once ready (zygote.py)
    ├── claim(spec)           a ready child whose template fits ``spec``, or
    │                         None: the launch takes the cold path (and a
    │                         template whose host view went stale follows it)
    ├── move_layer(warm, plan) a claimed overlay child's upper and work dirs
    │                         swapped into the container's layer dir
    ├── discard(warm)         kill and reap a claimed child that could not be used
    ├── drain()               kill and reap every pooled child (exit, reconfigure)
    └── stats()               ready, filling, hits, misses, memory and fds per child

A pooled child (runtime/pooled.py) is cloned into the container namespaces,
joins a cgroup of its own (``pool-<launcher pid>-<n>``, made by the
launcher; v1 only, see ``Manager.reset``) and a devices cgroup, builds the
spec-independent part of its template's root, then says READY and waits;
its counters are reset then.  ``claim`` hands it out once; claim.py writes
the limits, renames its cgroups to the container's id, and sends the spec
and the stdio fds.  It is
never returned to the pool: a pooled child sees nothing of another
container because there was none before it.

Overlay images (busybox, pulled ones) are pooled too: each child mounts
its overlay at the fill on a fresh upper and work dir in a dir of the
pool's, which the claim renames into the container's layer dir
(runtime/launcher/poollayers.py); a read-only root (its upper dir on a
tmpfs) is not pooled.

What fits a template (``key``, runtime/launcher/poolkeys.py): the same image (by id) and root plan
(except the per-container layer dir), a spec that may share the whole root when the
child holds one copy of it (as a cold child would), no user mounts (their sources are cloned with
open_tree before pivot_root, in the host's tree), no user namespace, the
same kind of network: ``lo`` only, or one bridge network (``host`` shares
the host's namespace: never pooled), and a seccomp program the child
already holds (compiled before it was cloned).

Bridge launches: the first one of an image that misses adds a bridge
template of that image and size (``BRIDGE_READY``), so a service that never uses a
bridge keeps no veth.  Its children get a veth pair once ready (the peer
eth0 down in their namespace, the host end up on the last claim's bridge
without carrier, runtime/launcher/plumbing.py: ``park``); the launcher hands
the network's /etc files over with the spec as detached mounts
(runtime/pooled.py), then names the host end, and configures eth0 on a
socket kept in the child's namespace, while the child runs its claim steps
(claim.py).  The pair needs no undoing: the kernel drops it with the
child's namespace (drain, kill -9 of the launcher).
Everything else (command, env, hostname, workdir, user, capabilities,
limits, tty, stdin) is applied at the claim.

Reliability: a pooled child holds no fd of the launcher's (it closes them
first), and waits on a pipe and a socket only the launcher holds: when the
launcher dies it reads EOF and exits.  Its cgroups carry the launcher's
parent, so the next launcher's start-up ``cleanup`` kills and removes them
with any other leftover (startup.py); the devices cgroups are swept there too.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field

from runtime import cgroups, child, libc, pooled
from runtime.images.viewtrees import ViewTrees, shareable
from runtime.launcher.messages import PoolReply
from runtime.launcher.plumbing import Parked, Plumber
from runtime.launcher.poolkeys import (
    BRIDGE_READY,
    BRIDGED,
    VIEW,
    Key,
    Template,
    bridged,
    fits,
    image_of,
    key,
)
from runtime.launcher.poollayers import PoolLayers
from runtime.launcher.ready import Ready, Source
from runtime.launcher.zygote import Zygote
from runtime.namespaces import DEFAULT_NAMESPACES, clone_flags
from runtime.procfs import process_start_time, rss_bytes
from runtime.security import devices
from runtime.spec import ContainerSpec, Limits, RootfsPlan

log = logging.getLogger("mydocker.launcher")

#: After this many pooled children of one template failed in a row before
#: their claim, the template is given up (logged): no clone loop.
MAX_FAILURES = 3

#: Seconds after a claim before a fill, while the pool has ready children:
#: a clone holds this loop for a few ms (the launcher's page tables are
#: copied), and the claimed container's exit and the next request should
#: not wait behind it.  bench.ab, pool 4, 150 launches against the same tree
#: without it (load 5.5-6): host -2.2 ms mean (95% -3.4 to -1.0), busybox
#: -3.0 ms (-4.7 to -1.3); bench.abload at 16 clients: 1.02x launches/s.
FILL_DELAY = 0.010


@dataclass
class Warm:
    """One pooled child, from its clone until it is claimed or reaped."""

    template: Template
    pid: int
    pidfd: int
    pid_start_time: int | None
    channel: socket.socket
    sync_write: int
    error_read: int
    cgroup: cgroups.Cgroup | None
    devices_cgroup: str | None = None
    ready: bool = False
    #: A bridge template's: the veth made once it was ready (plumbing.py).
    parked: Parked | None = None
    #: An overlay template's: the pool's dir of this child, holding its
    #: ``rw/upper`` and ``rw/work`` until the claim moves them (``move_layer``).
    layer: str | None = None


@dataclass
class _Counts:
    hits: int = 0
    misses: int = 0
    failures: dict[Key, int] = field(default_factory=dict)
    #: Children claimed and not yet replaced (``fill_due``).
    owed: int = 0
    #: A launch found only children still filling: claims owe no fill
    #: until an idle turn (``fill_due``).
    outrun: bool = False
    #: When the last claim took a child (``fill_timeout``).
    claimed_at: float = -1.0


class Pool:
    def __init__(
        self,
        selector: selectors.BaseSelector,
        cgroup_manager: cgroups.Manager | None,
        devices_parent: str = devices.PARENT,
        views: ViewTrees | None = None,
        plumber: Plumber | None = None,
        layers: PoolLayers | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        self.selector = selector
        #: Clones the children once ready (zygote.py); None: this process does.
        self.zygote = zygote
        #: Where overlay children get a dir each (poollayers.py); None: no
        #: overlay template is kept.
        self.layers = layers
        #: Parks a veth in a bridge template's children (the spawner's).
        self.plumber = plumber if plumber is not None else Plumber()
        self.cgroups = cgroup_manager
        self.devices_parent = devices_parent
        #: The host view's trees, shared with the cold path (spawn.py).
        self.views = views if views is not None else ViewTrees()
        self.templates: list[Template] = []
        self.children: list[Warm] = []
        self.counts = _Counts()
        self._names = itertools.count(1)

    # -- configuration ----------------------------------------------------
    def configure(self, templates: list[Template]) -> None:
        """Keep these warm from now on; children of other templates go."""
        if self.cgroups is not None and self.cgroups.version != "v1":
            # Only the v1 driver can reset a reused cgroup's counters.
            log.warning("no warm pool on cgroup %s", self.cgroups.version)
            templates = []
        if templates == self.templates:
            return
        self.drain()
        self.templates = [t for t in templates if t.size > 0 and self._keeps(t)]
        self.counts.failures.clear()
        if self.templates and self.zygote is not None:
            self.zygote.ensure()  # no pool, no zygote

    def _keeps(self, template: Template) -> bool:
        plan = template.spec.rootfs
        if template.key is None or plan is None:
            return False
        return plan.lower is None or self.layers is not None

    def wants_fill(self) -> bool:
        return self._needy() is not None

    def fill_due(self, idle: bool) -> bool:
        """Fill now?  On an idle turn, as long as the pool is short.  On a
        busy one only to replace a child a claim took (one fill per claim,
        so that fills cannot starve the requests): under steady demand the
        loop is never idle, and a pool filled only when idle empties after
        its first claims.  Unless the demand outran the fills (a launch
        missed while children of its template were still filling): then a
        pooled launch saves no CPU (a fill and a claim cost about what a cold
        launch does, now that both are cloned by the zygote: 11.79 against
        12.07 ms of CPU at 16 clients, docs/performance.md "Measured and not
        kept"), so busy turns stop filling until the loop is idle again."""
        if idle:
            self.counts.outrun = False
        if not self.wants_fill():
            self.counts.owed = 0
            return False
        if self.fill_timeout() > 0:
            return False
        return idle or self.counts.owed > 0

    def fill_timeout(self) -> float:
        """Seconds a fill waits: while every template still has a ready
        child, until ``FILL_DELAY`` after the last claim, so that what that
        claim started (the container's exit, the reply to its wait) does not
        wait behind a clone in this loop."""
        left = self.counts.claimed_at + FILL_DELAY - time.monotonic()
        if left <= 0:
            return 0.0
        for template in self.templates:
            if not any(w.ready for w in self.children if w.template is template):
                return 0.0
        return left

    def _needy(self) -> Template | None:
        for template in self.templates:
            if self.counts.failures.get(template.key, 0) >= MAX_FAILURES:
                continue
            if sum(1 for w in self.children if w.template is template) < template.size:
                return template
        return None

    # -- filling ----------------------------------------------------------
    def fill_one(self) -> bool:
        """Clone one child for the first template short of its size."""
        template = self._needy()
        if template is None:
            return False
        self.counts.owed = max(0, self.counts.owed - 1)
        try:
            self._clone(template)
        except Exception as err:  # noqa: BLE001 - a fill must never stop the loop
            self._failed(template, f"cloning a pooled child failed: {err}")
        return True

    def _clone(self, template: Template) -> None:
        """mkdir the child's cgroups and clone it; the child joins them
        itself (runtime/pooled.py), so the join's wait in the kernel (an
        RCU grace period, docs/performance.md) never holds this loop."""
        name = cgroups.pool_name(os.getpid(), next(self._names))
        cgroup = None if self.cgroups is None else self.cgroups.create(name, Limits())
        devices_cgroup = None
        opened: list[int] = []
        ends: list[int] = []  # the launcher's: kept by a Warm
        ours: socket.socket | None = None
        spec, layer = template.spec, None
        try:
            if spec.rootfs is not None and spec.rootfs.lower is not None:
                assert self.layers is not None  # configure() keeps no overlay template else
                spec, layer = self.layers.make(spec, name)
            procs = [] if cgroup is None else cgroup.procs_files
            if devices.available():
                devices_cgroup = devices.create(name, self.devices_parent)
                procs.append(os.path.join(devices_cgroup, "cgroup.procs"))
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            channel = theirs.detach()
            opened.append(channel)
            assert spec.rootfs is not None  # key(): an image's root
            view = None
            if spec.rootfs.lower is None:
                view = self.views.copies(spec.rootfs, whole=shareable(spec))
                opened += view.values() if view is not None else ()
            sync_read, sync_write = os.pipe2(os.O_CLOEXEC)
            error_read, error_write = os.pipe2(os.O_CLOEXEC)
            opened += [sync_read, error_write]
            ends += [sync_write, error_read]
            fds = child.ChildFds(
                sync_read, error_write, -1, -1, -1, sync_write=sync_write, view=view
            )
            warm = Warm(
                template, -1, -1, None, ours, sync_write, error_read, cgroup, devices_cgroup
            )
            warm.layer = layer
            pidfd = self._clone_child(warm, spec, fds, channel, tuple(procs))
        except BaseException:
            # Our ends too: a child the zygote may have cloned before it was
            # lost reads EOF on them and exits (runtime/pooled.py).
            for fd in opened + ends:
                os.close(fd)
            if ours is not None:
                ours.close()
            if cgroup is not None:
                cgroup.remove()
            if devices_cgroup is not None:
                devices.remove(devices_cgroup)
            if layer is not None and self.layers is not None:
                self.layers.remove(layer)
            raise
        for fd in opened:
            os.close(fd)
        self.children.append(warm)
        if pidfd >= 0:
            self._adopt(warm, warm.pid, pidfd)

    def _clone_child(
        self,
        warm: Warm,
        spec: ContainerSpec,
        fds: child.ChildFds,
        channel: int,
        procs: tuple[str, ...],
    ) -> int:
        """Clone ``pooled.run`` here: the pidfd (``warm.pid`` set); or ask the
        zygote (zygote.py): -1, its reply comes on the loop (``_adopt``)."""
        flags = clone_flags(DEFAULT_NAMESPACES)
        if self.zygote is not None:
            self.zygote.ensure()  # again after a death (zygote.py)
        if self.zygote is not None and self.zygote.ready:
            done, undone = (functools.partial(f, warm) for f in (self._adopt, self._unfilled))
            self.zygote.send(spec, fds, channel, procs, flags, done, undone)
            return -1
        warm.pid, pidfd = libc.clone(
            functools.partial(pooled.run, spec, fds, channel, procs), flags
        )
        return pidfd

    def _adopt(self, warm: Warm, pid: int, pidfd: int) -> None:
        """A cloned child: watch its exit and its READY."""
        warm.pid, warm.pidfd, warm.pid_start_time = pid, pidfd, process_start_time(pid)
        exited = Ready(Source.POOL, lambda mask: self._exited(warm))
        self.selector.register(pidfd, selectors.EVENT_READ, exited)
        readied = Ready(Source.POOL, lambda mask: self._readied(warm))
        self.selector.register(warm.channel, selectors.EVENT_READ, readied)

    def _unfilled(self, warm: Warm, err: Exception) -> None:
        """The zygote's clone failed, or it was lost: undone, a failure."""
        self.children.remove(warm)
        self._release(warm)
        self._failed(warm.template, f"cloning a pooled child failed: {err}")

    def _readied(self, warm: Warm) -> None:
        try:
            data = warm.channel.recv(1)
        except OSError:
            data = b""
        self.selector.unregister(warm.channel)
        if data == pooled.READY_BYTE and self._park(warm) and self._reset(warm):
            warm.ready = True
            self.counts.failures.pop(warm.template.key, None)
        # EOF: the child is exiting; its pidfd says so next.

    def _reset(self, warm: Warm) -> bool:
        """Its fill's CPU time and peak are not its container's."""
        try:
            if warm.cgroup is not None and self.cgroups is not None:
                self.cgroups.reset(warm.cgroup)
            return True
        except cgroups.CgroupError as err:
            self.discard(warm)
            self._failed(warm.template, f"resetting a pooled child's counters failed: {err}")
            return False

    def _park(self, warm: Warm) -> bool:
        """A bridge template's child gets its veth once it is ready: in a
        turn of the loop of its own, not the clone's, so that neither holds
        the loop long (a launch's exec waits for it)."""
        if warm.template.spec.network != BRIDGE_READY:
            return True
        try:
            warm.parked = self.plumber.park(warm.pid)
        except Exception as err:  # noqa: BLE001 - a fill must never stop the loop
            self.discard(warm)
            self._failed(warm.template, f"parking a veth in a pooled child failed: {err}")
            return False
        return True

    def _exited(self, warm: Warm) -> None:
        """A pooled child died before its claim: a failed fill step, or killed."""
        report = child.read_report(warm.error_read)
        self.discard(warm, kill=False)
        message = report.get("message") if report else "it exited"
        self._failed(warm.template, f"a pooled child {warm.pid} died unclaimed: {message}")

    def _failed(self, template: Template, message: str) -> None:
        k = template.key
        self.counts.failures[k] = self.counts.failures.get(k, 0) + 1
        log.warning("%s", message)
        if self.counts.failures[k] >= MAX_FAILURES:
            image = template.spec.image
            log.error("%s: %d failures in a row, no more pooled children", image, MAX_FAILURES)

    # -- claiming -----------------------------------------------------------
    def claim(self, spec: ContainerSpec) -> Warm | None:
        """A ready child for ``spec``, no longer the pool's; None: go cold.
        An overlay root that ran before (a restart, a start again) keeps its
        writable layer: only the cold path mounts the overlay on it."""
        wanted = key(spec)
        if wanted is not None and not self._fresh(spec.rootfs):
            wanted = None
        if wanted is not None:
            fitting = [w for w in self.children if fits(w.template.key, wanted)]
            for warm in fitting:
                if warm.ready:
                    self.children.remove(warm)
                    self.selector.unregister(warm.pidfd)
                    self.counts.hits += 1
                    self.counts.owed += 0 if self.counts.outrun else 1
                    self.counts.claimed_at = time.monotonic()
                    return warm
            if fitting:  # all still filling: the demand outran the fills
                self.counts.outrun, self.counts.owed = True, 0
            if bridged(wanted) and not any(
                bridged(t.key) and image_of(t.key) == image_of(wanted) for t in self.templates
            ):
                self._add_bridged(wanted)
            else:
                self._follow(spec)
        self.counts.misses += 1
        return None

    def _fresh(self, plan: RootfsPlan | None) -> bool:
        if plan is None or plan.lower is None:
            return True
        return self.layers is not None and self.layers.fresh(plan)

    def _add_bridged(self, wanted: Key) -> None:
        """An image's first bridge launch: keep children of it with a parked
        veth from now on, as many as of its first template."""
        for template in self.templates:
            if image_of(template.key) == image_of(wanted) and not bridged(template.key):
                on_bridge = dataclasses.replace(template.spec, network=BRIDGE_READY)
                self.templates.append(Template(on_bridge, template.size))
                image = template.spec.image
                log.info("bridge launches: the pool keeps %s children with a veth too", image)
                return

    def _follow(self, spec: ContainerSpec) -> None:
        """A spec of a template's image whose root differs from the
        template's: the host view changed since (a mask of /etc came or
        went, runtime/images/hostview.py), or an image of that name was
        pulled again (other lower dirs).  Fill for the new root from now
        on, so that the next launches hit again."""
        assert spec.rootfs is not None
        wanted = key(spec)
        assert isinstance(wanted, tuple)
        for index, template in enumerate(self.templates):
            old = template.spec.rootfs
            have = template.key
            assert old is not None and isinstance(have, tuple)
            if template.spec.image != spec.image or have[BRIDGED] != wanted[BRIDGED]:
                continue  # another image, or another kind of network
            if have[VIEW] == wanted[VIEW]:
                continue
            plan = dataclasses.replace(spec.rootfs, root=old.root, layer=old.layer)
            templates = list(self.templates)
            followed = dataclasses.replace(template.spec, rootfs=plan, image_id=spec.image_id)
            templates[index] = Template(followed, template.size)
            log.info("the %s root changed: the pool fills for the new one", spec.image)
            self.configure(templates)
            return

    def discard(self, warm: Warm, kill: bool = True) -> None:
        """Kill (unless dead already) and reap a child, claimed or not, and
        remove its cgroups."""
        if warm in self.children:
            self.children.remove(warm)
            self.selector.unregister(warm.pidfd)
        if not warm.ready:
            try:
                self.selector.unregister(warm.channel)
            except KeyError:
                pass
        if kill:
            try:
                signal.pidfd_send_signal(warm.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap(warm)

    def drain(self) -> None:
        if self.zygote is not None:
            self.zygote.settle()  # no clone of its left in flight
        for warm in list(self.children):
            self.discard(warm)

    def move_layer(self, warm: Warm, plan: RootfsPlan | None) -> None:
        """A claimed overlay child's upper and work dirs become the
        container's (poollayers.py); OSError: the claim discards it."""
        if warm.layer is not None and self.layers is not None:
            self.layers.move(warm.layer, plan)
            warm.layer = None

    def _reap(self, warm: Warm) -> None:
        try:
            os.waitid(os.P_PIDFD, warm.pidfd, os.WEXITED)
        except ChildProcessError:
            pass
        self._release(warm)

    def _release(self, warm: Warm) -> None:
        """Close a child's fds, remove its cgroups and its layer dir."""
        for fd in (warm.pidfd, warm.sync_write, warm.error_read):
            if fd >= 0:
                os.close(fd)
        warm.channel.close()  # a parked veth goes with the child's namespace
        if warm.parked is not None:
            warm.parked.close()  # the socket that holds that namespace too
        cgroup = warm.cgroup
        if cgroup is not None and not (cgroup.kill_all(rounds=1) and cgroup.remove()):
            log.warning("pooled cgroup %s is busy; the next start-up removes it", cgroup.name)
        if warm.devices_cgroup is not None:
            try:
                devices.remove(warm.devices_cgroup)
            except OSError as err:
                log.warning("could not remove %s: %s", warm.devices_cgroup, err)
        if warm.layer is not None and self.layers is not None:
            self.layers.remove(warm.layer)
            warm.layer = None

    # -- reporting ----------------------------------------------------------
    def stats(self) -> PoolReply:
        ready = [w for w in self.children if w.ready]
        rss: list[int] = []
        fds: list[int] = []
        for warm in ready:
            try:
                rss.append(rss_bytes(warm.pid))
                fds.append(len(os.listdir(f"/proc/{warm.pid}/fd")))
            except (OSError, ValueError):
                continue
        filling, counts = len(self.children) - len(ready), self.counts
        return PoolReply(len(ready), filling, counts.hits, counts.misses, tuple(rss), tuple(fds))
