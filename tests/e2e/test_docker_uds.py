"""Docker clients over the service's unix socket, with the service's bearer token.

``docker`` and docker-py both send the headers of ``HttpHeaders`` in their
config file (``$DOCKER_CONFIG/config.json``), which is how they carry
``Authorization: Bearer ...`` to a service that demands it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import ROOT, Service
from tests.e2e.docker_helpers import IMAGE, docker_binary

TOKEN = "docker-compat-test-token-0123456789"


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def uds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("uds")
    path, state, token_file = base / "mydocker.sock", base / "state", base / "token"
    token_file.write_text(TOKEN + "\n")
    with open(base / "service.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "--uds",
                str(path),
                "--state-dir",
                str(state),
                "--token-file",
                str(token_file),
            ],
            cwd=ROOT,
            # In the host's network namespace: `docker run` without --network
            # gets none here, not Docker's bridge (which made mydocker0 on the
            # host, a new address for each fresh state dir).
            env={**os.environ, "MYDOCKER_DOCKER_NETWORK": "none"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not _accepts(path):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        yield path
    finally:
        proc.terminate()
        proc.wait(15)
        Service(state_dir=state, port=0).close()


def _config(tmp_path: Path, token: str | None) -> Path:
    if token is not None:
        headers = {"HttpHeaders": {"Authorization": f"Bearer {token}"}}
        (tmp_path / "config.json").write_text(json.dumps(headers))
    return tmp_path


def _docker(uds: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{uds}", "DOCKER_CONFIG": str(config)}
    return subprocess.run(
        [docker_binary(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_cli_over_the_unix_socket_with_the_token(uds: Path, tmp_path: Path) -> None:
    result = _docker(uds, _config(tmp_path, TOKEN), "run", "--rm", IMAGE, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


def test_the_cli_without_the_token_is_turned_away(uds: Path, tmp_path: Path) -> None:
    result = _docker(uds, _config(tmp_path, None), "run", "--rm", IMAGE, "echo", "hi")
    assert result.returncode != 0
    assert "hi" not in result.stdout
    assert "Error response from daemon: unauthorized" in result.stderr


def test_docker_py_over_the_unix_socket_with_the_token(
    uds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(_config(tmp_path, TOKEN)))
    client = docker.DockerClient(base_url=f"unix://{uds}", timeout=60)
    try:
        assert client.containers.run(IMAGE, "echo hi", remove=True) == b"hi\n"
    finally:
        client.close()
