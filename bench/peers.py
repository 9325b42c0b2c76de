"""One launch of each peer, timed the same way: wall time from asking to done.

A peer's ``once()`` launches ``/bin/true`` (or the command it was made with)
in a fresh container and returns the seconds it took, raising ``PeerError``
when the launch failed.  Command-line peers are started with posix_spawn(3)
and waited for with waitpid(2), the cheapest way a program can run them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

UNSHARE_ARGS = ["--mount", "--pid", "--uts", "--net", "--ipc", "--fork", "--mount-proc"]


class PeerError(Exception):
    pass


class Peer:
    name = "peer"

    def once(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CommandPeer(Peer):
    """A command line, run to completion; its exit status must be 0."""

    def __init__(
        self,
        name: str,
        argv_for: Callable[[int], list[str]],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._argv_for = argv_for
        self._env = {**os.environ, **(env or {})}
        self._counter = itertools.count()
        self._path = shutil.which(argv_for(0)[0]) or argv_for(0)[0]
        self._devnull = os.open(os.devnull, os.O_RDWR)
        # Each launch's stderr, kept only until the next: read when it failed.
        self._stderr_file = tempfile.TemporaryFile(prefix="mydocker-bench-stderr-")
        self._stderr = self._stderr_file.fileno()

    def once(self) -> float:
        argv = self._argv_for(next(self._counter))
        os.ftruncate(self._stderr, 0)
        os.lseek(self._stderr, 0, os.SEEK_SET)
        start = time.perf_counter()
        pid = os.posix_spawn(
            self._path,
            argv,
            self._env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, self._devnull, 0),
                (os.POSIX_SPAWN_DUP2, self._devnull, 1),  # `docker version` prints
                (os.POSIX_SPAWN_DUP2, self._stderr, 2),
            ],
        )
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr = os.pread(self._stderr, 4096, 0).decode(errors="replace").strip()
            raise PeerError(f"{' '.join(argv)}: exit {code}: {stderr}")
        return elapsed

    def close(self) -> None:
        os.close(self._devnull)
        self._stderr_file.close()


def unshare_peer(command: list[str]) -> CommandPeer:
    return CommandPeer("unshare(1)", lambda _i: ["unshare", *UNSHARE_ARGS, *command])


def oci_peer(tool: str, bundle: Path) -> CommandPeer:
    prefix = f"mydocker-bench-{os.getpid()}"
    return CommandPeer(
        f"{tool} run", lambda i: [tool, "run", "--bundle", str(bundle), f"{prefix}-{i}"]
    )


def docker_peer(name: str, url: str, config_dir: Path, args: list[str]) -> CommandPeer:
    """The docker CLI against the service (``DOCKER_HOST``): ``docker run``
    is its create, attach, wait, start dance; ``docker version`` one round
    trip, the CLI's own floor."""
    env = {"DOCKER_HOST": url.replace("http://", "tcp://"), "DOCKER_CONFIG": str(config_dir)}
    return CommandPeer(name, lambda _i: ["docker", *args], env)


class HttpPeer(Peer):
    """POST /containers?wait=true on one keep-alive httpx client."""

    def __init__(self, name: str, url: str, body: dict[str, Any]) -> None:
        self.name = name
        self.body = body
        self.client = httpx.Client(base_url=url, timeout=60)

    def once(self) -> float:
        start = time.perf_counter()
        response = self.client.post("/containers", params={"wait": "true"}, json=self.body)
        elapsed = time.perf_counter() - start
        if response.status_code != 201:
            raise PeerError(f"{self.name}: {response.status_code} {response.text}")
        container = response.json()
        if container.get("exit_code") != 0:
            raise PeerError(f"{self.name}: container ended with {container}")
        return elapsed

    def close(self) -> None:
        self.client.close()


class DirectPeer(Peer):
    """The runtime called in-process: create + wait, no HTTP (what HTTP adds)."""

    name = "runtime in-process"

    def __init__(self, state_dir: Path, command: list[str]) -> None:
        from runtime import Runtime
        from runtime.spec import CreateRequest

        self.request = CreateRequest(tuple(command))
        self.runtime = Runtime.open(str(state_dir))
        self.runtime.start()

    def once(self) -> float:
        start = time.perf_counter()
        record = self.runtime.create(self.request)
        record = self.runtime.wait(record.id)
        elapsed = time.perf_counter() - start
        if record.exit_code != 0:
            raise PeerError(f"{self.name}: container ended with {record}")
        return elapsed

    def close(self) -> None:
        self.runtime.close()
