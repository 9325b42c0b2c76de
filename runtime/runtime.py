"""``Runtime``: what the API calls.  Thread-safe; every method may block.

A thin facade: each method hands over to the part that holds its concern.

    layout.Layout            state-dir paths
    planning.Planner         request → ContainerSpec (security, mounts, root, defaults)
    admission.Admission      disk space and reserve, max_containers, the launch gate
    launches.Launches        create, start, exec: record, then launch
    exits.Exits              exit events recorded then acked, waiters and their futures
    networks.Networks        networks (records), a container's address and ports,
                             the firewall and DNS (runtime/network/control.py)
    reconcile.Reconciler     records in step with the launcher, at start and after a drop
    signalling.Signaller     kill, kill_many, stop, stop_all
    output.Output            logs of a target, container or exec alike
    interactive.Interactive  attach, input, resize
    lifecycle.Lifecycle      restart, rename, pause/unpause, update, top
    containerverbs.ContainerVerbs (a base class) lifecycle verbs, kill, stop, wait, health
    outputverbs.OutputVerbs  (a base class) a container's logs and attach
    files.FileVerbs          (a base class) docker cp, diff, export, commit
    execverbs.ExecVerbs      (a base class) exec create, start, wait, logs
    imageverbs.ImageVerbs    (a base class) images: list, pull, tag, delete, save, load
    networkverbs.NetworkVerbs (a base class) networks, connect and disconnect
    volumes.VolumeStore      named and anonymous volumes (``runtime.volumes``, used by app/)
    restarts.Restarts        restart policies: on each exit (Exits.on_exit), at start
    warmpool.WarmPool        what the launcher's warm pool keeps ready, again after image events

The parts touch the outside world through what ``Runtime`` is given: the
state dir's ``Layout``, the ``RecordStore``, the ``ImageStore``, the host
image's ``HostView``, the ``LauncherClient``, the exit ``Reserve`` and the
``EventLog`` (one ``Stores``).  ``Runtime.open`` makes the real ones; tests
pass fakes (a launcher that records what it was sent).  A ``Meter``
(runtime/meters.py) takes what is measured: launch times, failed steps,
record writes; the service's counts them (app/metrics.py).

Events (runtime/events.py, built in runtime/reports.py) are published by the
part that writes the record they report, just after it: create and start
(Launches), die (Exits), kill and stop (Signaller), destroy and the image
events (here).

    create  -> record (created) -> launcher create -> record (running, pid)
    launcher exit event -> record (exited, exit code) -> ack to the launcher
    kill / stop / remove / wait / logs -> read the record, ask the launcher
    exec    -> exec record (created) -> launcher exec -> exec record (running)
               (create_exec and start_exec: the same two steps, apart)
    attach  -> a log cursor to follow, and input/resize through the launcher

A record is written before the launcher is asked for anything, and exit
statuses are acknowledged only once recorded, so a crash at any point loses
neither a container nor its exit code (docs/reliability.md).

Locks, and who owns them:

    Admission.lock   counting active containers and inserting one are one step;
                     ``delete_image`` holds it so no container slips onto an image
    Admission.gate   launches shared (record inserted → launcher answered),
                     a reconcile exclusive: it never takes a launch on its way
                     for a lost one (runtime/gate.py)
    Exits.lock       "is it exited?" against "it exited": no waiter misses its
                     wake-up; also guards the removed records kept for late callers
    (RecordStore and LauncherClient have their own, inside them)

Threads, and who starts them:

    launcher reader (LauncherClient)  replies and exit events in order → Exits.on_event
    auto-remove (Exits)               removing files must not hold up later events
    record retry timer (Exits)        an exit that could not be written, tried again
    launcher-recovery (Reconciler)    reconnect and reconcile after a drop, off the reader
    stop pool (Signaller.stop_all)    stop containers in parallel at shutdown
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from runtime import diskusage
from runtime.admission import Admission
from runtime.asking import Launch
from runtime.connections import Connections
from runtime.containerverbs import ContainerVerbs
from runtime.errors import InvalidArgument, InvalidState, Unavailable
from runtime.events import EventLog
from runtime.execverbs import ExecVerbs
from runtime.exits import Exits
from runtime.files import FileVerbs
from runtime.health import HealthMonitor
from runtime.images import DEFAULT_MAX_BYTES, ImageStore
from runtime.images.hostview import HostPathError, HostView
from runtime.imageverbs import ImageVerbs
from runtime.imaging import Imaging, RegistryOptions
from runtime.interactive import Interactive
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.launches import Launches, Planned, new_container_id
from runtime.launchtrace import LaunchObserver
from runtime.layout import Layout
from runtime.lifecycle import Lifecycle
from runtime.meters import Meter
from runtime.network.etcdir import EtcDir
from runtime.networks import Networks
from runtime.networkverbs import NetworkVerbs
from runtime.output import Output
from runtime.outputverbs import OutputVerbs
from runtime.planning import Planner, pool_templates
from runtime.reconcile import Reconciler
from runtime.records import (
    EXITED,
    RUNNING,
    ContainerRecord,
    ExecRecord,
    RecordStore,
)
from runtime.reports import container_event
from runtime.reserve import Reserve
from runtime.restarts import Restarts
from runtime.security.userns import DEFAULT_HOST_ID
from runtime.signalling import Signaller
from runtime.spec import (
    DEFAULT_IMAGE,
    USERNS_SIZE,
    CreateRequest,
    Limits,
)
from runtime.trash import Trash
from runtime.volumes import VolumeStore, volumes_from
from runtime.warmpool import WarmPool

log = logging.getLogger("mydocker.runtime")


@dataclass(frozen=True)
class Stores:
    """What the parts of a ``Runtime`` share with the world outside it."""

    layout: Layout
    records: RecordStore
    images: ImageStore
    host_view: HostView
    launcher: LauncherClient
    reserve: Reserve
    events: EventLog


class Runtime(ContainerVerbs, OutputVerbs, FileVerbs, ExecVerbs, ImageVerbs, NetworkVerbs):
    def __init__(
        self,
        stores: Stores,
        *,
        userns_range: tuple[int, int] = (DEFAULT_HOST_ID, USERNS_SIZE),
        max_containers: int | None = None,
        default_limits: Limits | None = None,
        meter: Meter | None = None,
        on_launch: LaunchObserver | None = None,
        networks: Networks | None = None,
        registry: RegistryOptions | None = None,
        pool_size: int = 0,
        pool_images: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Compose the parts over the given stores and launcher (see ``open``)."""
        # The host image first, then the others (0: no pool at all).
        sizes = ((DEFAULT_IMAGE, pool_size), *pool_images) if pool_size > 0 else ()
        layout, records, images = stores.layout, stores.records, stores.images
        launcher, reserve, events = stores.launcher, stores.reserve, stores.events
        self.meter = meter or Meter()
        self.events = events
        self.layout = layout
        self.state_dir = layout.state_dir
        self.records = records
        self.images = images
        self.host_view = stores.host_view
        self.launcher = launcher
        self._reserve = reserve
        self.planner = Planner(
            layout, images, stores.host_view, userns_range, default_limits or Limits()
        )
        self.admission = Admission(layout, records, reserve, max_containers)
        self.imaging = Imaging(
            images, records, self.admission.lock, events, registry or RegistryOptions()
        )
        self.warm_pool = WarmPool(lambda: pool_templates(self.planner, sizes), launcher)
        self.imaging.on_change = self.warm_pool.images_changed
        self.exits = Exits(records, launcher, reserve, remove=self.remove, events=events)
        self.trash = Trash(layout.trash)  # removed containers' dirs (runtime/trash.py)
        if networks is None:
            networks = Networks(layout, records, etc=EtcDir(layout.etc_files))
        self.networks = networks
        self.networks.events = events
        self.exits.on_ended = self.networks.ended
        self.connections = Connections(layout, records, self.networks, launcher)
        self.reconciler = Reconciler(layout, records, launcher, self.admission.gate, self.exits)
        self.launches = Launches(
            layout,
            records,
            images,
            launcher,
            self.admission,
            self.exits,
            events,
            self.meter,
            on_launch=on_launch,
            networks=self.networks,
        )
        self.signaller = Signaller(records, launcher, self.exits, events)
        self.output = Output(layout, records, self.exits)
        self.interactive = Interactive(self.output, launcher, self.exits)
        self.volumes = VolumeStore(layout.volumes, records.list, events)
        self.restarts = Restarts(records, self.launches.relaunch)
        self.exits.on_exit = self.restarts.on_exit
        self.health = HealthMonitor(self, events)
        self.lifecycle = Lifecycle(records, self.launches, self.signaller, events)

    @classmethod
    def open(
        cls,
        state_dir: str,
        *,
        userns_range: tuple[int, int] = (DEFAULT_HOST_ID, USERNS_SIZE),
        max_containers: int | None = None,
        default_limits: Limits | None = None,
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        host_image_paths: Sequence[str] = (),
        launcher: LauncherClient | None = None,
        meter: Meter | None = None,
        on_launch: LaunchObserver | None = None,
        registry: RegistryOptions | None = None,
        pool_size: int = 0,
        pool_images: Sequence[tuple[str, int]] = (),
        favordynmods: bool = False,
    ) -> Runtime:
        """The runtime of ``state_dir``, with its own stores and launcher client.

        ``userns_range`` is (first host id, count) for ``userns`` containers;
        ``max_containers`` caps the containers created or running at once;
        ``default_limits`` fill the limits a create leaves unset;
        ``max_image_bytes`` caps an imported image's archive and contents;
        ``host_image_paths`` are host directories the ``host`` image adds
        to its view (runtime/images/hostview.py); ``launcher`` replaces the
        launcher client (tests); ``meter`` takes the runtime's measurements
        (runtime/meters.py).  The event log is ``<state_dir>/events``.
        ``on_launch`` is called with each container's launcher round trip
        and the launcher's timeline of it (runtime/launchtrace.py), on the
        launching thread.  ``registry`` holds the insecure registries and
        mirrors pulls use (runtime/imaging.py).  ``pool_size`` children of
        the ``host`` image are kept warm by the launcher
        (runtime/launcher/pool.py; 0: no pool at all), and of each
        ``pool_images`` (name, count) as many.  ``favordynmods``: a launcher
        started by this runtime holds a favordynmods cgroup hierarchy
        (runtime/cgroups/dynmods.py)."""
        layout = Layout.of(state_dir)
        os.makedirs(layout.containers, mode=0o700, exist_ok=True)
        # The pid files' (runtime/rundir.py): there for a launcher of an
        # older version too, which does not make it.
        os.makedirs(layout.run_dir, mode=0o700, exist_ok=True)
        images = ImageStore(layout.images, max_image_bytes)
        try:
            host_view = HostView(host_image_paths)
        except HostPathError as err:
            raise InvalidArgument("host_image_paths", str(err)) from err
        records = RecordStore(layout.database)
        if meter is not None:
            records.on_write = meter.record_written
        if launcher is None:
            # The client's reader thread calls back into the runtime built next.
            launcher = LauncherClient(
                layout.state_dir,
                on_event=lambda event: runtime.exits.on_event(event),
                on_disconnect=lambda: runtime.reconciler.on_launcher_lost(),
                favordynmods=favordynmods,
            )
        runtime = cls(
            Stores(
                layout,
                records,
                images,
                host_view,
                launcher,
                Reserve(layout.reserve),
                EventLog(os.path.join(layout.state_dir, "events")),
            ),
            userns_range=userns_range,
            max_containers=max_containers,
            default_limits=default_limits,
            meter=meter,
            on_launch=on_launch,
            registry=registry,
            pool_size=pool_size,
            pool_images=pool_images,
        )
        return runtime

    @property
    def userns_range(self) -> tuple[int, int]:
        return self.planner.userns_range

    @property
    def default_limits(self) -> Limits:
        return self.planner.default_limits

    @property
    def max_containers(self) -> int | None:
        return self.admission.max_containers

    @property
    def reconciles(self) -> int:
        """How many reconciles completed (tests, logs)."""
        return self.reconciler.reconciles

    # -- life cycle -----------------------------------------------------
    def start(self) -> None:
        """Connect to (or start) the launcher and reconcile the records with it."""
        self._reserve.ensure()
        self.images.prepare()
        self.volumes.prepare()
        self.warm_pool.start()
        self.launcher.connect()
        self.reconciler.reconcile()
        self.networks.restore()
        self.restarts.resume(self.records.list(status=EXITED))
        self.health.start()

    def close(self, stop_containers: bool = False, grace: float = 10.0) -> None:
        """Let go of the launcher and the records.

        Containers keep running under the launcher (a later start picks them
        up again) unless ``stop_containers``: then each running container is
        stopped first (SIGTERM, SIGKILL after ``grace`` seconds), in parallel,
        so the whole takes at most about ``grace + KILL_WAIT`` seconds."""
        # No restart policy undoes the service's own stops (Docker's neither).
        self.restarts.close()
        self.health.close()
        if stop_containers:
            self.stop_all(grace)
        self.exits.close()
        self.launches.close()
        self.networks.control.close()
        self.launcher.close()
        self.records.close()
        # Last: the launcher's last exits are still reported; followers end.
        self.events.close()

    def running_count(self) -> int:
        """How many containers are running, by the records (cheap: an index count)."""
        return self.records.count(RUNNING)

    def launcher_lag(self) -> float | None:
        """Seconds the launcher's loop took to answer a no-op request: its lag
        (a loop busy cloning or reaping answers late); ``None`` when the
        launcher cannot be reached."""
        started = time.monotonic()
        try:
            self.launcher.request(protocol.Hello())
        except Unavailable:
            return None
        return time.monotonic() - started

    def pool_state(self) -> protocol.PoolReply | None:
        """The launcher's warm pool (metrics); None when it cannot be reached."""
        try:
            return self.launcher.request(protocol.Pool())
        except Unavailable:
            return None

    def reserve_released(self) -> bool:
        """Whether the space held back for recording exits was given up
        (the state dir filled); launches are refused until it is back."""
        return self._reserve.released()

    def stop_all(self, grace: float = 10.0) -> builtins.list[ContainerRecord]:
        for record in self.records.list(status=RUNNING):
            self.lifecycle.thaw_for_signal(record.id)  # a frozen one would not die
        return self.signaller.stop_all(grace)

    # -- paths ----------------------------------------------------------
    def container_dir(self, container_id: str) -> str:
        return self.layout.container_dir(container_id)

    def writable_bytes(self, ref: str) -> int:
        """The bytes a container has written to its root (its overlay's upper dir)."""
        record = self.records.resolve(ref)
        return diskusage.tree_bytes(diskusage.writable_dir(self.container_dir(record.id)))

    def log_path(self, container_id: str, stream: str) -> str:
        return self.layout.log_path(container_id, stream)

    def exec_dir(self, container_id: str, exec_id: str) -> str:
        return self.layout.exec_dir(container_id, exec_id)

    def exec_log_path(self, record: ExecRecord, stream: str) -> str:
        return self.layout.exec_log_path(record, stream)

    def pidfile_path(self, container_id: str) -> str:
        return self.layout.pidfile_path(container_id)

    # -- containers -----------------------------------------------------
    def create(self, request: CreateRequest) -> ContainerRecord:
        """Record and launch a container; with ``request.start`` it runs at
        once, without it the child waits on its sync pipe until
        ``start_container``.  Limits the request leaves unset take the
        service's defaults, and the record's spec holds the limits that applied."""
        return self.launches.create(*self._plan(request))

    def begin_create(self, request: CreateRequest) -> Launch:
        """``create`` without waiting: the ``Launch``'s futures (app/launching.py)."""
        return self.launches.begin(*self._plan(request))

    def _plan(self, request: CreateRequest) -> Planned:
        """A new container's id and spec, its volumes made: what ``Launches`` takes."""
        if request.restart_policy.name != "no" and request.auto_remove:
            raise InvalidArgument(
                "restart_policy", "a restart policy cannot be combined with auto_remove"
            )
        container_id = new_container_id()
        inherited = volumes_from(request.volumes_from, self.get)
        request = self.planner.with_image_defaults(request, inherited)
        security = self.planner.security(request.security)
        mounts, anonymous = self.volumes.resolve(inherited + request.mounts)
        spec = self.planner.container_spec(container_id, replace(request, mounts=mounts), security)
        rootfs = spec.rootfs
        lowers = (rootfs.lower, *rootfs.more_lowers) if rootfs and rootfs.lower else ()
        self.volumes.check_driver(spec.mounts, anonymous, spec.options.volume_driver)
        self.volumes.ensure(spec.mounts, anonymous, security.userns_host_id, lowers)
        asked = (request.network, request.ports, request.network_aliases, request.endpoint)
        spec = replace(spec, network=self.networks.plan(*asked))
        return container_id, spec, request.name, request.start, request.tty_size

    def start_container(self, ref: str) -> ContainerRecord:
        """Release a created container (the sync pipe's go byte)."""
        return self.launches.start_container(ref)

    def get(self, ref: str) -> ContainerRecord:
        return self.records.resolve(ref)

    def list(
        self, status: str | None = None, name: str | None = None
    ) -> builtins.list[ContainerRecord]:
        return self.records.list(status=status, name=name)

    def stats(self, ref: str) -> dict[str, Any]:
        """Live counters of a running container: memory_bytes,
        memory_peak_bytes, cpu_seconds, pids (``None``: not measured)."""
        record = self.get(ref)
        if record.status != RUNNING:
            raise InvalidState(f"container {record.id} is not running (status {record.status})")
        return self.launcher.request(protocol.Stats(record.id)).as_dict()

    def open_pidfd(self, ref: str) -> int:
        return self.signaller.open_pidfd(ref)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """Remove a container, its logs and layer; with ``volumes`` (and
        always with ``auto_remove``, as ``docker run --rm``) its anonymous volumes."""
        record = self.get(ref)
        restarting = self.restarts.restarting(record)
        # A created one goes without force, as in Docker: its child has run nothing.
        if (record.status == RUNNING or restarting) and not force:
            # Docker's wording (daemon/delete.go), which clients look for.
            state = "restarting" if restarting else record.status
            raise InvalidState(
                f"cannot remove container {record.id}: container is {state}: "
                "stop the container before removing or force remove"
            )
        self.restarts.cancel(record.id)
        if record.status != EXITED:
            self.lifecycle.thaw_for_signal(record.id)
            self.signaller.kill_and_wait(record)
        final, waiters = self.exits.forget(record.id, ref)
        self.events.publish(container_event("destroy", final))
        # Removed as far as any client can see (no record, no name, the
        # destroy event): wake the removal waiters now.  The files below
        # take a rename here and their unlinks later (runtime/trash.py),
        # which `docker run --rm` (waiting on `wait?condition=removed`)
        # need not sit through either.
        for future in waiters:
            if not future.done():
                future.set_result(final)
        # The logs and the overlay's upper/work dirs, moved out of the way
        # and removed on the trash's thread; the mounts themselves lived in
        # the container's mount namespace and went with it.
        self.trash.discard(self.layout.container_dir(record.id))
        self.networks.removed(final)
        if volumes or final.spec.auto_remove:
            self.volumes.remove_anonymous(final.spec.mounts)
