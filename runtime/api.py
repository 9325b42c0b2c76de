"""``RuntimeApi``: the runtime's public surface, as a ``typing.Protocol``.

What ``app/`` may call on a runtime, and all it may call: the HTTP layer
depends on this protocol (``app/deps.py``), not on the ``Runtime`` class,
and the API tests' fake (``tests/fakes/runtime.py``) implements it.  mypy
holds both to it:

    RuntimeApi              every public method of ``Runtime``, signature for signature
      state_dir, events,    attributes: the state directory, the event log,
      volumes               the volume store (runtime/volumes.py)
      life cycle            start, close, running_count, launcher_lag, pool_state,
                            reserve_released, stop_all
      paths                 container_dir, log_path, exec_dir, exec_log_path, pidfile_path
      containers            create, begin_create, start_container, get, list, stats, kill,
                            kill_many, stop, open_pidfd, remove
      lifecycle verbs       restart, rename, pause, unpause, update, top
      files                 archive_stat, archive_read, archive_extract, changes, export,
                            commit, commit_image
      waiting               exit_future, removal_future, next_exit_future, wait,
                            waiter_count
      output                logs, log_lines, log_chunks
      images                list_images, get_image, image_users, delete_image, begin_import,
                            begin_image_import, pull_image, tag_image, prune_images,
                            save_images, begin_load, resolve_remote
      networks              create_network, list_networks, get_network, network_containers,
                            delete_network, prune_networks
      execs                 exec, create_exec, check_exec_start, start_exec, get_exec,
                            list_execs, exec_exit_future, wait_exec, exec_logs,
                            exec_log_chunks
      attach                attach_target, write_input, close_input, resize
    ImageImport             what ``begin_import`` and ``begin_image_import`` return:
                            write, finish, abort
    _runtime_is_a_runtime_api   the static check that ``Runtime`` satisfies it

mypy checks that ``Runtime`` has each method here with a compatible
signature; ``tests/unit/test_api.py`` checks the other way round (no public
method of ``Runtime`` is missing here) and that parameter names, kinds and
defaults are the same, which mypy does not compare.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runtime.archive import PathStat
    from runtime.asking import Launch
    from runtime.changes import Change
    from runtime.events import EventLog
    from runtime.health import Health
    from runtime.images import Image
    from runtime.images.building import BuildRequest
    from runtime.images.pull import Progress
    from runtime.images.registry import Credentials
    from runtime.imaging import RemoteImage, Removal
    from runtime.interactive import AttachTarget
    from runtime.launcher.messages import PoolReply
    from runtime.lifecycle import Top
    from runtime.network.attachment import EndpointOptions
    from runtime.records import ContainerRecord, ExecRecord, NetworkRecord
    from runtime.runtime import Runtime
    from runtime.selection import Selector
    from runtime.signalling import KillResult
    from runtime.spec import CreateRequest, ExecRequest, Limits, RestartPolicy
    from runtime.volumes import VolumeStore


class ImageImport(Protocol):
    """An image import under way (``runtime.images.ImportJob``): the body's
    chunks, then ``finish`` (or ``abort`` if the body broke off)."""

    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> Image: ...

    def abort(self) -> None: ...


class ImageLoad(Protocol):
    """A load under way (``runtime.imaging.LoadJob``): a docker save or OCI layout
    tarball's chunks, then ``finish`` with the images loaded (or ``abort``)."""

    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> builtins.list[Image]: ...

    def abort(self) -> None: ...


class RuntimeApi(Protocol):
    """The runtime as the HTTP layer sees it; ``Runtime`` documents each method."""

    #: Docker's ``/info`` reports it as ``DockerRootDir``.
    state_dir: str
    #: What ``GET /events`` reads and follows (app/routes/events.py).
    events: EventLog
    #: Named and anonymous volumes (runtime/volumes.py; app/routes/volumes.py).
    volumes: VolumeStore

    # -- life cycle -----------------------------------------------------
    def start(self) -> None: ...

    def close(self, stop_containers: bool = False, grace: float = 10.0) -> None: ...

    def running_count(self) -> int: ...

    def launcher_lag(self) -> float | None: ...

    def pool_state(self) -> PoolReply | None: ...

    def reserve_released(self) -> bool: ...

    def stop_all(self, grace: float = 10.0) -> builtins.list[ContainerRecord]: ...

    # -- paths ----------------------------------------------------------
    def container_dir(self, container_id: str) -> str: ...

    def log_path(self, container_id: str, stream: str) -> str: ...

    def exec_dir(self, container_id: str, exec_id: str) -> str: ...

    def exec_log_path(self, record: ExecRecord, stream: str) -> str: ...

    def pidfile_path(self, container_id: str) -> str: ...

    # -- containers -----------------------------------------------------
    def create(self, request: CreateRequest) -> ContainerRecord: ...

    def begin_create(self, request: CreateRequest) -> Launch: ...

    def start_container(self, ref: str) -> ContainerRecord: ...

    def get(self, ref: str) -> ContainerRecord: ...

    def list(
        self, status: str | None = None, name: str | None = None
    ) -> builtins.list[ContainerRecord]: ...

    def stats(self, ref: str) -> dict[str, Any]: ...

    def kill(self, ref: str, signal: str | int = "SIGKILL") -> ContainerRecord: ...

    def kill_many(self, selector: Selector, signal: str | int = "SIGKILL") -> KillResult: ...

    def stop(
        self, ref: str, timeout: float | None = None, *, only_running: bool = False
    ) -> ContainerRecord: ...

    def open_pidfd(self, ref: str) -> int: ...

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...

    # -- lifecycle verbs --------------------------------------------------
    def restart(self, ref: str, timeout: float | None = None) -> ContainerRecord: ...

    def rename(self, ref: str, name: str) -> ContainerRecord: ...

    def pause(self, ref: str) -> ContainerRecord: ...

    def unpause(self, ref: str) -> ContainerRecord: ...

    def update(
        self,
        ref: str,
        limits: Limits,
        restart_policy: RestartPolicy | None = None,
        tuning: Mapping[str, int] | None = None,
    ) -> ContainerRecord: ...

    def top(self, ref: str, ps_args: str | None = None) -> Top: ...

    # -- files ------------------------------------------------------------
    def archive_stat(self, ref: str, path: str) -> PathStat: ...

    def archive_read(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]: ...

    def archive_extract(
        self,
        ref: str,
        path: str,
        fileobj: IO[bytes],
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> int: ...

    def changes(self, ref: str) -> builtins.list[Change]: ...

    def export(self, ref: str) -> Iterator[bytes]: ...

    def commit(self, ref: str, name: str, pause: bool = True) -> Image: ...

    def commit_image(self, ref: str, request: BuildRequest) -> Image: ...

    # -- waiting --------------------------------------------------------
    def exit_future(self, ref: str) -> Future[ContainerRecord]: ...

    def removal_future(self, ref: str) -> Future[ContainerRecord]: ...

    def next_exit_future(self, ref: str) -> Future[ContainerRecord]: ...

    def wait(self, ref: str, timeout: float | None = None) -> ContainerRecord: ...

    def waiter_count(self) -> int: ...

    # -- output ---------------------------------------------------------
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
    ) -> Iterator[bytes]: ...

    def log_lines(
        self,
        ref: str,
        streams: Sequence[str] = ("stdout", "stderr"),
        tail: int | None = None,
        follow: bool = False,
        since: int | None = None,
        until: int | None = None,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, int, bytes]]: ...

    def log_chunks(
        self,
        ref: str,
        streams: Sequence[str] = ("stdout", "stderr"),
        tail: int | None = None,
        follow: bool = False,
        from_end: bool = False,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, bytes]]: ...

    def writable_bytes(self, ref: str) -> int: ...

    def health_of(self, ref: str) -> Health | None: ...

    def kill_exec(self, ref: str, signal: int) -> None: ...

    # -- images ---------------------------------------------------------
    def list_images(self) -> builtins.list[Image]: ...

    def get_image(self, ref: str) -> Image: ...

    def image_users(self, name: str) -> builtins.list[ContainerRecord]: ...

    def delete_image(self, ref: str, force: bool = False) -> builtins.list[Removal]: ...

    def pull_image(
        self,
        ref: str,
        credentials: Credentials | None = None,
        progress: Progress | None = None,
    ) -> Image: ...

    def tag_image(self, ref: str, tag: str) -> Image: ...

    def prune_images(self, dangling_only: bool = True) -> builtins.list[Removal]: ...

    def resolve_remote(self, ref: str, credentials: Credentials | None = None) -> RemoteImage: ...

    def save_images(self, refs: builtins.list[str]) -> Iterator[bytes]: ...

    def begin_load(self) -> ImageLoad: ...

    def begin_import(self, name: str) -> ImageImport: ...

    def begin_image_import(self, request: BuildRequest) -> ImageImport: ...

    # -- networks -------------------------------------------------------
    def create_network(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        ip_range: str | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> NetworkRecord: ...

    def list_networks(self) -> builtins.list[NetworkRecord]: ...

    def connect_network(
        self,
        ref: str,
        network: str,
        aliases: tuple[str, ...] = (),
        options: EndpointOptions | None = None,
    ) -> ContainerRecord: ...

    def disconnect_network(
        self, ref: str, network: str, force: bool = False
    ) -> ContainerRecord: ...

    def get_network(self, ref: str) -> NetworkRecord: ...

    def network_containers(self, name: str) -> builtins.list[ContainerRecord]: ...

    def delete_network(self, ref: str) -> None: ...

    def prune_networks(self) -> builtins.list[str]: ...

    # -- execs ----------------------------------------------------------
    def exec(self, ref: str, request: ExecRequest) -> ExecRecord: ...

    def create_exec(self, ref: str, request: ExecRequest) -> ExecRecord: ...

    def check_exec_start(self, ref: str) -> ExecRecord: ...

    def start_exec(self, ref: str, tty_size: tuple[int, int] | None = None) -> ExecRecord: ...

    def get_exec(self, ref: str) -> ExecRecord: ...

    def list_execs(self, ref: str) -> builtins.list[ExecRecord]: ...

    def exec_exit_future(self, ref: str) -> Future[ExecRecord]: ...

    def wait_exec(self, ref: str, timeout: float | None = None) -> ExecRecord: ...

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
    ) -> Iterator[bytes]: ...

    def exec_log_chunks(
        self, ref: str, streams: Sequence[str] = ("stdout", "stderr")
    ) -> Iterator[tuple[str, bytes]]: ...

    # -- attach ---------------------------------------------------------
    def attach_target(self, kind: str, ref: str) -> AttachTarget: ...

    def write_input(self, target: AttachTarget, data: bytes) -> None: ...

    def close_input(self, target: AttachTarget) -> None: ...

    def resize(self, target: AttachTarget, rows: int, cols: int) -> None: ...


if TYPE_CHECKING:

    def _runtime_is_a_runtime_api(runtime: Runtime) -> RuntimeApi:
        # Never called: mypy rejects this return if ``Runtime`` lacks a method
        # above or has one with an incompatible signature.
        return runtime
