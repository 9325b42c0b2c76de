"""``FakeRuntime``: the runtime's protocol (``runtime.api.RuntimeApi``) in memory.

The one fake the API tests (tests/api/) put behind the app.  mypy holds it
to the protocol (``_fake_is_a_runtime_api`` below), so it has every method
of ``Runtime`` with its signature, and a change there shows up here.

    Call                 one recorded call: (operation, args, kwargs), as the handler made it
    READS                the lookups, which ``commands()`` and ``ops(reads=False)`` leave out
    FakeRuntime          answers from what a test sets, records every call
      record, others     the containers: ``get`` resolves a ref among them, ``list`` filters them
      exec_record        the exec the native exec operations answer with
      execs              the execs ``create_exec`` recorded (Docker's), by id; started
                         once, with pid ``exec_pid``
      images, job        what the image operations answer; ``job`` is the FakeImport
      exit, removal, exec_exit, done      the futures the waiting operations hand out
      log_output, exec_output, chunks, lines, attach_paths    what the output operations read
      kill_result        what ``kill_many`` answers, for the refs it was given
      error, errors      raised by every recorded call, or by one operation's
      answers            a reply that replaces one operation's usual one
    FakeImport           an image import that keeps its chunks (``runtime.api.ImageImport``)

Records are made by the test files (each has its own ``make_record``), so
the fake starts with a plain running container named ``web``.

The fake keeps the runtime's state rules that the Docker API maps onto its
statuses (runtime/launches.py, runtime/signalling.py): ``start_container`` of a
running container raises ``NotModified`` (an exited one starts again); ``pause``
of one that is not running raises ``InvalidState``;
``stop(only_running=True)`` of one that is not running raises ``NotModified``;
an exec is created in a running container and started once, while it runs.
Everything else answers whatever the container's status, as the native API's
tests expect: they set ``error``/``errors`` for the refusals they check.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from runtime import (
    AttachTarget,
    ContainerRecord,
    ExecRecord,
    InvalidState,
    KillResult,
    NotFound,
    NotModified,
    Selector,
)
from runtime.archive import PathStat
from runtime.asking import Launch
from runtime.changes import Change, Kind
from runtime.events import EventLog
from runtime.health import Health
from runtime.images import Image, normalize_name
from runtime.images.building import BuildRequest
from runtime.images.pull import Progress, PullProgress
from runtime.images.registry import Credentials
from runtime.imaging import RemoteImage, Removal
from runtime.launcher.messages import PoolReply
from runtime.lifecycle import Top
from runtime.network.attachment import EndpointOptions
from runtime.records import NetworkRecord
from runtime.signals import parse_signal
from runtime.spec import (
    ContainerSpec,
    CreateRequest,
    ExecRequest,
    ExecSpec,
    Limits,
    RestartPolicy,
    Status,
)
from runtime.volumes import VolumeStore

if TYPE_CHECKING:
    from runtime.api import ImageImport, RuntimeApi

ID = "0123456789abcdef" * 4
EXEC_ID = "e" * 64
#: The id of an image the fake "imports" or "commits" through the Docker API.
FAKE_BUILT_ID = "sha256:" + "b" * 64
T0 = "2026-11-29T05:00:00.000000Z"

Call = tuple[str, tuple[Any, ...], dict[str, Any]]
#: The lookups ``FakeRuntime.commands`` leaves out (``check_exec_start`` only
#: looks an exec up and checks it).
READS = frozenset(
    {
        "get",
        "list",
        "list_images",
        "get_image",
        "get_exec",
        "check_exec_start",
        "list_networks",
        "get_network",
        "network_containers",
        "writable_bytes",
    }
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def recorded(
    method: Callable[Concatenate[FakeRuntime, P], R],
) -> Callable[Concatenate[FakeRuntime, P], R]:
    """Record the call as made (positional and keyword arguments as given),
    then raise the error set for it, if any, before answering."""

    def call(self: FakeRuntime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        op = method.__name__
        self.calls.append((op, args, kwargs))
        error = self.errors.get(op, self.error)
        if error is not None:
            raise error
        return method(self, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class FakeImport:
    """An import that keeps the chunks and finishes as ``mybox`` (or raises ``error``)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.chunks: list[bytes] = []
        self.finished = self.aborted = False
        self.error = error

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> Image:
        self.finished = True
        if self.error is not None:
            raise self.error
        return Image("mybox", False, "/x", "2026-11-29T05:00:00Z", len(b"".join(self.chunks)), 1)

    def abort(self) -> None:
        self.aborted = True


class FakeLoad(FakeImport):
    """A load that keeps the chunks and finishes with ``images`` (or raises ``error``)."""

    def __init__(self, images: list[Image], error: Exception | None = None) -> None:
        super().__init__(error)
        self.images = images

    def finish(self) -> list[Image]:  # type: ignore[override]
        self.finished = True
        if self.error is not None:
            raise self.error
        return self.images


class FakeRuntime:
    """Answers from what a test sets; records every call in ``calls``."""

    state_dir = "/nonexistent"
    #: Declared, never set: the fake has no event log.  app/main.py observes
    #: only a real ``Runtime``, and ``GET /events`` is tested end to end
    #: (tests/e2e/test_events.py).
    events: EventLog
    #: Declared, set by the tests that need it: a real store over a tmp dir.
    volumes: VolumeStore

    def __init__(
        self,
        record: ContainerRecord | None = None,
        others: Sequence[ContainerRecord] = (),
        exec_record: ExecRecord | None = None,
    ) -> None:
        self.calls: list[Call] = []
        #: What ``health_of`` answers (runtime/health.py).
        self.health: Health | None = None
        #: What ``writable_bytes`` answers.
        self.writable = 0
        self.record = record or ContainerRecord(
            id=ID,
            name="web",
            status=Status.running,
            spec=ContainerSpec(command=("sleep", "60"), hostname=ID[:12]),
            created_at=T0,
            pid=4242,
            started_at=T0,
        )
        self.others = list(others)
        self.exec_record = exec_record or ExecRecord(
            id=EXEC_ID,
            container_id=ID,
            status=Status.running,
            spec=ExecSpec(command=("sh",)),
            created_at=T0,
            pid=99,
            started_at=T0,
        )
        self.execs: dict[str, ExecRecord] = {}
        #: The pid an exec gets when ``start_exec`` starts it.
        self.exec_pid = 77
        self.images: list[Image] = [Image("host", True, None)]
        #: What the network operations answer and keep (``create_network`` adds).
        self.networks: list[NetworkRecord] = []
        self.job = FakeImport()
        #: What ``pull_image`` tells its ``progress``, then raises (if set).
        self.pull_steps: list[PullProgress] = []
        self.pull_error: Exception | None = None
        self.load_job = FakeLoad([])
        self.exit: Future[ContainerRecord] = Future()
        self.removal: Future[ContainerRecord] = Future()
        self.exec_exit: Future[ExecRecord] = Future()
        self.done: Future[Any] = Future()
        self.log_output: list[bytes] = []
        self.exec_output: list[bytes] = []
        self.chunks: list[tuple[str, bytes]] = []
        self.lines: list[tuple[str, int, bytes]] = []
        self.attach_paths: tuple[str, ...] = ()
        self.tty = True
        #: The targets ``attach_target`` handed out, in order.
        self.targets: list[AttachTarget] = []
        self.stats_sample: dict[str, Any] = {
            "memory_bytes": 1 << 20,
            "memory_peak_bytes": 2 << 20,
            "cpu_seconds": 0.5,
            "pids": 3,
        }
        self.kill_result = KillResult(9, (), (), ())
        #: What the archive operations answer: the stat, the tar's chunks;
        #: ``extracted`` is the body ``archive_extract`` read.
        self.path_stat = PathStat("hosts", 12, 0o100644, 1_700_000_000 * 10**9)
        self.archive_chunks: list[bytes] = [b"tar"]
        self.extracted = b""
        self.error: Exception | None = None
        #: What a launch's answer fails with (``begin_create``), and the
        #: launches handed out.
        self.launch_error: Exception | None = None
        self.launches: list[Launch] = []
        self.errors: dict[str, Exception] = {}
        self.answers: dict[str, Any] = {}

    def commands(self) -> builtins.list[Call]:
        """The calls other than lookups (``READS``), for tests that leave
        open how a handler finds what it acts on."""
        return [call for call in self.calls if call[0] not in READS]

    def ops(self, *, reads: bool = True) -> builtins.list[str]:
        """The operations called, in order; lookups too unless ``reads=False``."""
        return [op for op, _, _ in (self.calls if reads else self.commands())]

    def _answer(self, op: str, usual: T) -> T:
        return cast(T, self.answers.get(op, usual))

    def _containers(self) -> builtins.list[ContainerRecord]:
        return [self.record, *self.others]

    def _container(self, ref: str) -> ContainerRecord:
        """By full id, id prefix or name, as ``RecordStore.resolve`` (not recorded)."""
        for record in self._containers():
            if ref in (record.id, record.name) or record.id.startswith(ref):
                return record
        raise NotFound("container", ref)

    def _exec(self, ref: str) -> ExecRecord:
        """An exec ``create_exec`` recorded, else ``exec_record``; by id or id prefix."""
        for record in [*self.execs.values(), self.exec_record]:
            if record.id.startswith(ref):
                return record
        raise NotFound("exec", ref)

    def _startable_exec(self, ref: str) -> ExecRecord:
        """The runtime's rule (``Launches.startable_exec``): created, not yet
        started, in a container that still runs."""
        record = self._exec(ref)
        if record.status != Status.created:
            raise InvalidState(f"exec {record.id} has already started")
        if self._container(record.container_id).status != Status.running:
            raise InvalidState(f"container {record.container_id} is not running")
        return record

    # -- life cycle -----------------------------------------------------
    @recorded
    def start(self) -> None:
        pass

    @recorded
    def close(self, stop_containers: bool = False, grace: float = 10.0) -> None:
        pass

    @recorded
    def running_count(self) -> int:
        return sum(1 for r in self._containers() if r.status == Status.running)

    @recorded
    def launcher_lag(self) -> float | None:
        return 0.0001

    @recorded
    def pool_state(self) -> PoolReply | None:
        return PoolReply(ready=2, filling=1, hits=5, misses=3, rss_bytes=(4096, 8192), fds=(6, 6))

    @recorded
    def reserve_released(self) -> bool:
        return False

    @recorded
    def stop_all(self, grace: float = 10.0) -> builtins.list[ContainerRecord]:
        return []

    # -- paths ----------------------------------------------------------
    @recorded
    def container_dir(self, container_id: str) -> str:
        return f"{self.state_dir}/containers/{container_id}"

    @recorded
    def log_path(self, container_id: str, stream: str) -> str:
        return f"{self.container_dir(container_id)}/{stream}.log"

    @recorded
    def exec_dir(self, container_id: str, exec_id: str) -> str:
        return f"{self.container_dir(container_id)}/execs/{exec_id}"

    @recorded
    def exec_log_path(self, record: ExecRecord, stream: str) -> str:
        return f"{self.exec_dir(record.container_id, record.id)}/{stream}.log"

    @recorded
    def pidfile_path(self, container_id: str) -> str:
        return f"{self.container_dir(container_id)}/pid"

    # -- containers -----------------------------------------------------
    @recorded
    def create(self, request: CreateRequest) -> ContainerRecord:
        return self._answer("create", self.record)

    @recorded
    def begin_create(self, request: CreateRequest) -> Launch:
        """``create``'s answer, already there; ``exited`` follows ``exit``
        (a copy: the handler cancels what it does not wait for)."""
        answered: Future[ContainerRecord] = Future()
        if self.launch_error is not None:
            answered.set_exception(self.launch_error)
        else:
            answered.set_result(self._answer("create", self.record))
        exited: Future[ContainerRecord] = Future()

        def follow(done: Future[ContainerRecord]) -> None:
            if done.cancelled() or not exited.set_running_or_notify_cancel():
                return
            error = done.exception()
            if error is not None:
                exited.set_exception(error)
            else:
                exited.set_result(done.result())

        self.exit.add_done_callback(follow)
        self.launches.append(Launch(self.record.id, answered, exited, Future()))
        return self.launches[-1]

    @recorded
    def start_container(self, ref: str) -> ContainerRecord:
        """The runtime's rules (runtime/launches.py), which Docker's statuses map."""
        record = self._container(ref)
        if record.status == Status.running:
            raise NotModified(f"container {record.id} is already running")
        return self._answer("start_container", self.record)

    # -- files --------------------------------------------------------------
    @recorded
    def archive_stat(self, ref: str, path: str) -> PathStat:
        self._container(ref)
        return self._answer("archive_stat", self.path_stat)

    @recorded
    def archive_read(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]:
        self._container(ref)
        return self.path_stat, iter(self.archive_chunks)

    @recorded
    def archive_extract(
        self,
        ref: str,
        path: str,
        fileobj: IO[bytes],
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> int:
        """Keeps the body it was given in ``extracted``."""
        self._container(ref)
        self.extracted = fileobj.read()
        return 1

    @recorded
    def changes(self, ref: str) -> builtins.list[Change]:
        self._container(ref)
        return self._answer(
            "changes", [Change("/tmp", Kind.modified), Change("/tmp/f", Kind.added)]
        )

    @recorded
    def export(self, ref: str) -> Iterator[bytes]:
        self._container(ref)
        return iter(self.archive_chunks)

    @recorded
    def commit(self, ref: str, name: str, pause: bool = True) -> Image:
        self._container(ref)
        return self._answer("commit", Image(name, False, f"/images/{name}"))

    @recorded
    def commit_image(self, ref: str, request: BuildRequest) -> Image:
        self._container(ref)
        image = Image(request.ref or "committed", False, None, kind="pulled", id=FAKE_BUILT_ID)
        return self._answer("commit_image", image)

    # -- lifecycle verbs ----------------------------------------------------
    @recorded
    def restart(self, ref: str, timeout: float | None = None) -> ContainerRecord:
        return self._answer("restart", self._container(ref))

    @recorded
    def rename(self, ref: str, name: str) -> ContainerRecord:
        return self._answer("rename", dataclasses.replace(self._container(ref), name=name))

    @recorded
    def pause(self, ref: str) -> ContainerRecord:
        """The runtime's rule: ``InvalidState`` unless it runs."""
        record = self._container(ref)
        if record.status != Status.running:
            raise InvalidState(f"container {record.id} is not running")
        return self._answer("pause", record)

    @recorded
    def unpause(self, ref: str) -> ContainerRecord:
        return self._answer("unpause", self._container(ref))

    @recorded
    def update(
        self,
        ref: str,
        limits: Limits,
        restart_policy: RestartPolicy | None = None,
        tuning: Mapping[str, int] | None = None,
    ) -> ContainerRecord:
        return self._answer("update", self._container(ref))

    @recorded
    def top(self, ref: str, ps_args: str | None = None) -> Top:
        self._container(ref)
        return self._answer("top", Top(("UID", "PID", "CMD"), (("root", "4242", "sleep 60"),)))

    @recorded
    def get(self, ref: str) -> ContainerRecord:
        """By full id, id prefix or name, as ``RecordStore.resolve``."""
        return self._container(ref)

    @recorded
    def list(
        self, status: str | None = None, name: str | None = None
    ) -> builtins.list[ContainerRecord]:
        return [
            r
            for r in self._containers()
            if (status is None or r.status == status) and (name is None or r.name == name)
        ]

    @recorded
    def stats(self, ref: str) -> dict[str, Any]:
        return self.stats_sample

    @recorded
    def kill(self, ref: str, signal: str | int = "SIGKILL") -> ContainerRecord:
        return self.record

    @recorded
    def kill_many(self, selector: Selector, signal: str | int = "SIGKILL") -> KillResult:
        """Checks the signal and the selector with the runtime's own
        functions, as ``Runtime.kill_many`` does before anything is sent."""
        signo = parse_signal(signal)
        selector.check()
        result = self.kill_result
        return KillResult(signo, result.killed, result.not_running, result.not_found)

    @recorded
    def stop(
        self, ref: str, timeout: float | None = None, *, only_running: bool = False
    ) -> ContainerRecord:
        """With ``only_running``, the runtime's rule: ``NotModified`` unless it runs."""
        if only_running and (record := self._container(ref)).status != Status.running:
            raise NotModified(f"container {record.id} is not running")
        return self.record

    @recorded
    def open_pidfd(self, ref: str) -> int:
        raise NotImplementedError("the API does not open pidfds")

    @recorded
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        pass

    # -- waiting --------------------------------------------------------
    @recorded
    def exit_future(self, ref: str) -> Future[ContainerRecord]:
        return self.exit

    @recorded
    def removal_future(self, ref: str) -> Future[ContainerRecord]:
        return self.removal

    @recorded
    def next_exit_future(self, ref: str) -> Future[ContainerRecord]:
        return self.exit

    @recorded
    def wait(self, ref: str, timeout: float | None = None) -> ContainerRecord:
        return self.exit.result(timeout)

    @recorded
    def waiter_count(self) -> int:
        return 0

    # -- output ---------------------------------------------------------
    @recorded
    def logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        return iter(self.log_output)

    @recorded
    def log_lines(
        self,
        ref: str,
        streams: Sequence[str] = ("stdout", "stderr"),
        tail: int | None = None,
        follow: bool = False,
        since: int | None = None,
        until: int | None = None,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, int, bytes]]:
        return iter([line for line in self.lines if line[0] in streams])

    @recorded
    def log_chunks(
        self,
        ref: str,
        streams: Sequence[str] = ("stdout", "stderr"),
        tail: int | None = None,
        follow: bool = False,
        from_end: bool = False,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, bytes]]:
        return iter([chunk for chunk in self.chunks if chunk[0] in streams])

    # -- images ---------------------------------------------------------
    @recorded
    def list_images(self) -> builtins.list[Image]:
        return self.images

    @recorded
    def kill_exec(self, ref: str, signal: int) -> None:
        self.get_exec(ref)

    @recorded
    def health_of(self, ref: str) -> Health | None:
        self._container(ref)
        return self.health

    @recorded
    def writable_bytes(self, ref: str) -> int:
        self._container(ref)
        return self.writable

    @recorded
    def get_image(self, ref: str) -> Image:
        """By name, Docker's defaults dropped (``normalize_name``), as ``ImageStore.get``."""
        try:
            name = normalize_name(ref)
        except ValueError:  # a pulled image's tag or id
            name = ref
        for image in self.images:
            if name in (image.name, image.id) or ref in image.tags:
                return image
        raise NotFound("image", ref)

    @recorded
    def image_users(self, name: str) -> builtins.list[ContainerRecord]:
        return [r for r in self._containers() if r.spec.image == name]

    @recorded
    def delete_image(self, ref: str, force: bool = False) -> builtins.list[Removal]:
        name = normalize_name(ref) if "delete_image" not in self.answers else ref
        return self._answer(
            "delete_image", [Removal("Untagged", f"{name}:latest"), Removal("Deleted", name)]
        )

    @recorded
    def pull_image(
        self,
        ref: str,
        credentials: Credentials | None = None,
        progress: Progress | None = None,
    ) -> Image:
        """The image named ``pulled`` in ``images`` (tests put it there); each
        layer's steps go to ``progress`` as ``pull_steps`` lists them."""
        for step in self.pull_steps:
            if progress is not None:
                progress(step)
        if self.pull_error is not None:
            raise self.pull_error
        return self.get_image(ref)

    @recorded
    def tag_image(self, ref: str, tag: str) -> Image:
        return self.get_image(ref)

    @recorded
    def save_images(self, refs: builtins.list[str]) -> Iterator[bytes]:
        for ref in refs:
            self.get_image(ref)
        return iter([b"tar:", ",".join(refs).encode()])

    @recorded
    def begin_load(self) -> FakeLoad:
        return self.load_job

    @recorded
    def prune_images(self, dangling_only: bool = True) -> builtins.list[Removal]:
        return self._answer("prune_images", [])

    @recorded
    def resolve_remote(self, ref: str, credentials: Credentials | None = None) -> RemoteImage:
        return RemoteImage(
            "application/vnd.oci.image.manifest.v1+json", "sha256:" + "0" * 64, 2, "amd64", "linux"
        )

    # -- networks -------------------------------------------------------
    @recorded
    def create_network(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ip_range: str | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> NetworkRecord:
        record = NetworkRecord(
            name,
            "ab" * 32,
            subnet or "172.18.0.0/16",
            gateway or "172.18.0.1",
            "mdk-x",
            internal,
            "2026-01-01T00:00:00Z",
            dict(labels or {}),
            ip_range or "",
            dict(aux_addresses or {}),
        )
        self.networks.append(record)
        return record

    @recorded
    def list_networks(self) -> builtins.list[NetworkRecord]:
        return list(self.networks)

    @recorded
    def get_network(self, ref: str) -> NetworkRecord:
        for record in self.networks:
            if ref in (record.name, record.id):
                return record
        raise NotFound("network", ref)

    @recorded
    def network_containers(self, name: str) -> builtins.list[ContainerRecord]:
        return [r for r in self._containers() if r.spec.network and r.spec.network.network == name]

    @recorded
    def connect_network(
        self,
        ref: str,
        network: str,
        aliases: tuple[str, ...] = (),
        options: EndpointOptions | None = None,
    ) -> ContainerRecord:
        """The call is what the tests look at (``calls``)."""
        self.get_network(network)
        return self._container(ref)

    @recorded
    def disconnect_network(self, ref: str, network: str, force: bool = False) -> ContainerRecord:
        self.get_network(network)
        return self._container(ref)

    @recorded
    def delete_network(self, ref: str) -> None:
        self.networks.remove(self.get_network(ref))

    @recorded
    def prune_networks(self) -> builtins.list[str]:
        return []

    @recorded
    def begin_import(self, name: str) -> ImageImport:
        return self.job

    @recorded
    def begin_image_import(self, request: BuildRequest) -> ImageImport:
        return self.job

    # -- execs ----------------------------------------------------------
    @recorded
    def exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        return self.exec_record

    @recorded
    def create_exec(self, ref: str, request: ExecRequest) -> ExecRecord:
        """Recorded in ``execs``, ``created``, in a running container (the runtime's rule)."""
        container = self._container(ref)
        if container.status != Status.running:
            raise InvalidState(f"container {container.id} is not running")
        record = ExecRecord(
            id=f"{len(self.execs):064x}",
            container_id=container.id,
            status=Status.created,
            spec=request.spec,
            created_at=T0,
        )
        self.execs[record.id] = record
        return record

    @recorded
    def check_exec_start(self, ref: str) -> ExecRecord:
        return self._startable_exec(ref)

    @recorded
    def start_exec(self, ref: str, tty_size: tuple[int, int] | None = None) -> ExecRecord:
        """Once (``InvalidState`` after); it then runs with pid ``exec_pid``."""
        record = self._startable_exec(ref)
        started = dataclasses.replace(record, status=Status.running, pid=self.exec_pid)
        self.execs[record.id] = started
        return started

    @recorded
    def get_exec(self, ref: str) -> ExecRecord:
        return self._exec(ref)

    @recorded
    def list_execs(self, ref: str) -> builtins.list[ExecRecord]:
        return [self.exec_record]

    @recorded
    def exec_exit_future(self, ref: str) -> Future[ExecRecord]:
        return self.exec_exit

    @recorded
    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord:
        return self.exec_exit.result(timeout)

    @recorded
    def exec_logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        return iter(self.exec_output)

    @recorded
    def exec_log_chunks(
        self, ref: str, streams: Sequence[str] = ("stdout", "stderr")
    ) -> Iterator[tuple[str, bytes]]:
        return iter([chunk for chunk in self.chunks if chunk[0] in streams])

    # -- attach ---------------------------------------------------------
    @recorded
    def attach_target(self, kind: str, ref: str) -> AttachTarget:
        target = AttachTarget(
            id=self.exec_record.id if kind == "exec" else self.record.id,
            kind=kind,
            tty=self.tty,
            stdin=True,
            log_paths=self.attach_paths,
            done=self.done,
        )
        self.targets.append(target)
        return target

    @recorded
    def write_input(self, target: AttachTarget, data: bytes) -> None:
        if target.tty and target.log_paths:  # an echo, as a pty would
            with open(target.log_paths[0], "ab") as f:
                f.write(b"echo:" + data)

    @recorded
    def close_input(self, target: AttachTarget) -> None:
        pass

    @recorded
    def resize(self, target: AttachTarget, rows: int, cols: int) -> None:
        pass


if TYPE_CHECKING:

    def _fake_is_a_runtime_api(fake: FakeRuntime) -> RuntimeApi:
        # Never called: mypy rejects this return if the fake strays from the protocol.
        return fake
