"""End-to-end fixtures: a real service (``python -m app``) on a free loopback
port with its own state dir, and an httpx client for it.

Every test in ``tests/e2e`` is marked ``root``: it runs real containers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from runtime import cgroups

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """A running ``python -m app`` and how to reach it."""

    state_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        # The child keeps its own copy of the log fd; ours is closed at once.
        with open(self.state_dir.parent / f"service-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--state-dir",
                    str(self.state_dir),
                    *self.extra_args,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("service did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def launcher_pid(self) -> int | None:
        """The pid of the launcher serving this state dir (it outlives the API)."""
        out = subprocess.run(
            ["pgrep", "-f", f"runtime.launcher --state-dir {self.state_dir}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        return int(out[0]) if out else None

    def stop_launcher(self) -> None:
        """End the launcher this service started (tests clean up after themselves)."""
        pid = self.launcher_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def kill_leftovers(self) -> None:
        """Containers still running outlive their launcher (reparented to
        init); kill them through this service's cgroups, as a restarted
        launcher would, so no test leaves a process behind."""
        manager = cgroups.manager(str(self.state_dir))
        if manager is not None:
            manager.cleanup()
            manager.remove_empty_parents()


def _start_service(tmp_path_factory: pytest.TempPathFactory, **kwargs: object) -> Service:
    state = tmp_path_factory.mktemp("svc") / "state"
    service = Service(state_dir=state, port=free_port(), **kwargs)  # type: ignore[arg-type]
    service.start()
    return service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service shared by the tests that do not restart or reconfigure it."""
    svc = _start_service(tmp_path_factory)
    yield svc
    svc.stop()
    svc.stop_launcher()
    svc.kill_leftovers()


@pytest.fixture
def own_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service of the test's own, which the test may stop and restart."""
    svc = Service(state_dir=tmp_path_factory.mktemp("svc") / "state", port=free_port())
    yield svc
    svc.stop()
    svc.stop_launcher()
    svc.kill_leftovers()


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


def run(client: httpx.Client, command: list[str], **spec: object) -> dict[str, object]:
    """POST /containers?wait=true and return the finished container."""
    body = {"command": command, **spec}
    response = client.post("/containers", params={"wait": "true"}, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def logs(client: httpx.Client, ref: str, **params: object) -> str:
    response = client.get(f"/containers/{ref}/logs", params=params)
    assert response.status_code == 200, response.text
    return response.text
