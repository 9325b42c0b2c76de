"""Running the real ``docker`` CLI and docker-py against a mydocker service."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Service

#: The image the Docker tests run: the built-in busybox (runtime/images).
IMAGE = "busybox"


def docker_binary() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.fail("the docker CLI is missing: scripts/setup installs it (Debian's docker.io)")
    return path


def docker_env(service: Service, config_dir: Path) -> dict[str, str]:
    # DOCKER_CONFIG: the CLI writes its config there, not into ~/.docker.
    return {
        **os.environ,
        "DOCKER_HOST": f"tcp://127.0.0.1:{service.port}",
        "DOCKER_CONFIG": str(config_dir),
    }


def run_docker(
    service: Service,
    config_dir: Path,
    *args: str,
    input: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_binary(), *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=docker_env(service, config_dir),
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


Docker = Callable[..., subprocess.CompletedProcess[str]]


def docker_runner(service: Service, config_dir: Path) -> Docker:
    """``run_docker`` bound to a service and a config dir: a test's ``docker``."""

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_docker(service, config_dir, *args, **kwargs)  # type: ignore[arg-type]

    return call


#: The same callable, by the name the lifecycle tests use.
DockerCli = Docker


@pytest.fixture
def cli(service: Service, tmp_path: Path) -> DockerCli:
    """The real ``docker`` CLI against the session's service (import it as a fixture)."""

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_docker(service, tmp_path, *args, **kwargs)  # type: ignore[arg-type]

    return call


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """A CLI call's stdout, once it has succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout
