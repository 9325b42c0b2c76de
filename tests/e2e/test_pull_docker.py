"""Pulled images through Docker's clients: the real ``docker`` CLI and docker-py.

``docker pull``, ``images``, ``tag``, ``rmi``, ``run`` of a pulled image (and
of a missing one, which the CLI pulls first) against a real registry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import run_docker
from tests.e2e.oci_registry import Registry
from tests.e2e.pulled_images import start_app_registry

pytestmark = pytest.mark.skipif(
    not (shutil.which("docker-registry") and shutil.which("skopeo")),
    reason="needs docker-registry and skopeo (scripts/setup installs them)",
)

Docker = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_app_registry(tmp_path_factory)
    yield reg
    reg.stop()


@pytest.fixture
def cli(service: Service, tmp_path: Path) -> Docker:
    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_docker(service, tmp_path, *args, **kwargs)  # type: ignore[arg-type]

    return call


def test_docker_pull_images_tag_run_rmi(cli: Docker, registry: Registry) -> None:
    ref = f"{registry.host}/e2e/app:app"
    pulled = cli("pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert "Pull complete" in pulled.stdout and "Downloaded newer image" in pulled.stdout
    try:
        listed = cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
        assert f"{ref} " in listed.stdout
        inspected = json.loads(cli("image", "inspect", ref).stdout)[0]
        assert inspected["Config"]["Entrypoint"] == ["/bin/sh", "-c"]
        assert len(inspected["RootFS"]["Layers"]) == 2
        assert inspected["RepoDigests"][0].startswith(f"{registry.host}/e2e/app@sha256:")
        run = cli("run", "--rm", ref)
        assert (run.returncode, run.stdout) == (0, "hello from /work/dir as 1000:1000\n"), run
        run = cli("run", "--rm", "--entrypoint", "/bin/busybox", ref, "cat", "/etc/motd")
        assert (run.returncode, run.stdout) == (0, "new motd\n"), run.stderr
        assert cli("tag", ref, "mine/app:v2").returncode == 0
        assert "mine/app:v2" in cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        history = cli("history", "-q", ref)
        assert history.returncode == 0 and history.stdout.strip()
        removed = cli("rmi", "mine/app:v2")
        assert removed.returncode == 0 and "Untagged: mine/app:v2" in removed.stdout
        removed = cli("rmi", ref)
        assert removed.returncode == 0 and "Deleted: sha256:" in removed.stdout, removed.stderr
        assert cli("image", "inspect", ref).returncode != 0
    finally:
        cli("rmi", "-f", ref)
        cli("rmi", "-f", "mine/app:v2")


def test_docker_run_of_a_missing_image_pulls_it(cli: Docker, registry: Registry) -> None:
    ref = f"{registry.host}/e2e/base:base"
    try:
        run = cli("run", "--rm", ref, "busybox", "cat", "/etc/motd")
        assert (run.returncode, run.stdout) == (0, "old motd\n"), run.stderr
        assert "Unable to find image" in run.stderr
    finally:
        cli("rmi", "-f", ref)


def test_docker_pull_of_an_unknown_tag_fails_with_the_name(cli: Docker, registry: Registry) -> None:
    result = cli("pull", f"{registry.host}/e2e/app:nope")
    assert result.returncode != 0 and "e2e/app:nope" in result.stderr


def test_docker_py_pull_and_run(service: Service, registry: Registry) -> None:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    repo = f"{registry.host}/e2e/app"
    try:
        image = client.images.pull(repo, tag="app")
        assert f"{repo}:app" in image.tags
        assert image.id.startswith("sha256:")
        assert client.containers.run(f"{repo}:app", remove=True) == (
            b"hello from /work/dir as 1000:1000\n"
        )
        assert client.images.get(f"{repo}:app").id == image.id
        client.images.remove(f"{repo}:app")
        assert f"{repo}:app" not in [t for i in client.images.list() for t in i.tags]
    finally:
        client.close()


def test_docker_save_and_load(cli: Docker, registry: Registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/e2e/app:app"
    try:
        assert cli("pull", ref).returncode == 0
        saved = tmp_path / "app.tar"
        result = cli("save", "-o", str(saved), ref)
        assert result.returncode == 0, result.stderr
        assert cli("rmi", ref).returncode == 0
        loaded = cli("load", "-i", str(saved))
        assert loaded.returncode == 0, loaded.stderr
        assert f"Loaded image: {ref}" in loaded.stdout
        run = cli("run", "--rm", ref)
        assert (run.returncode, run.stdout) == (0, "hello from /work/dir as 1000:1000\n")
    finally:
        cli("rmi", "-f", ref)
