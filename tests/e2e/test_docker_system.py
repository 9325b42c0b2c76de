"""Docker's system endpoints and event stream, end to end: ``docker events``
(``--since``/``--until``/``--filter``), ``docker system df``, ``docker info``,
``docker container prune --filter until=``, and docker-py's
``client.events(decode=True)``, ``df()``, ``info()``, over real containers."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker as docker_py
import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, Docker, docker_runner
from tests.e2e.helpers import unique


@pytest.fixture
def docker(service: Service, tmp_path: Path) -> Docker:
    return docker_runner(service, tmp_path)


@pytest.fixture
def sdk(service: Service) -> Iterator[docker_py.DockerClient]:
    client = docker_py.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    yield client
    client.close()


def _events(docker: Docker, *args: str) -> list[dict[str, Any]]:
    result = docker("events", "--format", "{{json .}}", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_docker_events_since_until_in_dockers_shape(docker: Docker) -> None:
    since = time.time()
    name = unique("ev")
    run = docker("run", "--name", name, "--label", "team=a", IMAGE, "sh", "-c", "exit 3")
    assert run.returncode == 3, run.stderr
    assert docker("rm", name).returncode == 0
    until = time.time() + 0.5
    events = _events(docker, "--since", f"{since:.3f}", "--until", f"{until:.3f}")
    mine = [e for e in events if e["Actor"]["Attributes"].get("name") == name]
    assert [e["Action"] for e in mine] == ["create", "start", "die", "destroy"], mine
    die = next(e for e in mine if e["Action"] == "die")
    assert die["Type"] == "container" and die["scope"] == "local"
    attributes = die["Actor"]["Attributes"]
    assert attributes["exitCode"] == "3" and attributes["team"] == "a"
    assert attributes["image"] == IMAGE
    assert die["Actor"]["ID"] == die["id"] and len(die["Actor"]["ID"]) == 64
    assert abs(die["time"] - die["timeNano"] // 10**9) <= 1
    # Filters: the event, the container, the label, the type.
    only_die = _events(
        docker,
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "event=die",
        "--filter",
        f"container={name}",
    )
    assert [e["Action"] for e in only_die] == ["die"]
    labelled = _events(
        docker, "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "label=team=a"
    )
    assert {e["Actor"]["Attributes"]["name"] for e in labelled} == {name}
    assert (
        _events(
            docker, "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "type=volume"
        )
        == []
    )
    bad = docker("events", "--since", "1", "--until", "2", "--filter", "type=nope")
    assert bad.returncode != 0 and "type=nope" in bad.stderr


def test_docker_py_follows_events_as_they_happen(sdk: docker_py.DockerClient) -> None:
    name = unique("evpy")
    stream = sdk.events(decode=True, filters={"container": name})
    try:
        container = sdk.containers.run(IMAGE, ["true"], name=name, detach=True)
        actions = []
        for event in stream:
            actions.append(event["Action"])
            if event["Action"] == "die":
                break
        assert actions[0] == "create" and "start" in actions, actions
        assert event["Actor"]["Attributes"]["exitCode"] == "0"
        container.remove()
    finally:
        stream.close()


def test_system_df_shows_the_writable_layers(docker: Docker, client: httpx.Client) -> None:
    name = unique("df")
    made = docker("run", "--name", name, IMAGE, "sh", "-c", "head -c 300000 /dev/zero > /big")
    assert made.returncode == 0, made.stderr
    try:
        usage = client.get("/v1.47/system/df").json()
        mine = next(c for c in usage["Containers"] if c["Names"] == [f"/{name}"])
        assert 300000 <= mine["SizeRw"] < 400000
        assert mine["SizeRootFs"] > mine["SizeRw"]
        busybox = next(i for i in usage["Images"] if i["RepoTags"] == ["busybox:latest"])
        assert busybox["Containers"] >= 1 and busybox["Size"] > 0
        assert usage["LayersSize"] >= busybox["Size"] and usage["Volumes"] == []
        shown = docker("system", "df", "--format", "{{json .}}")
        assert shown.returncode == 0, shown.stderr
        kinds = {json.loads(line)["Type"] for line in shown.stdout.splitlines()}
        assert {"Images", "Containers"} <= kinds
        verbose = docker("system", "df", "-v")
        assert verbose.returncode == 0 and name in verbose.stdout, verbose.stderr
    finally:
        docker("rm", "-f", name)


def test_info_has_what_clients_read(docker: Docker, sdk: docker_py.DockerClient) -> None:
    info = sdk.info()
    assert info["Debug"] is False and info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] in ("1", "2")
    assert info["NCPU"] == os.cpu_count() and info["MemTotal"] > 0
    assert info["KernelVersion"] == os.uname().release
    assert info["OperatingSystem"].startswith("Debian")
    assert info["Driver"] == "overlayfs"
    assert info["Containers"] == (
        info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"]
    )
    assert info["Images"] >= 2
    assert sdk.version()["ApiVersion"] == "1.47"
    shown = docker("info", "--format", "{{json .}}")
    assert shown.returncode == 0, shown.stderr
    parsed = json.loads(shown.stdout)
    assert parsed["CgroupVersion"] == info["CgroupVersion"] and parsed["NCPU"] == info["NCPU"]
    assert "WARNING" not in docker("info").stderr


def test_container_prune_until(docker: Docker) -> None:
    old, new = unique("old"), unique("new")
    assert docker("create", "--name", old, IMAGE, "true").returncode == 0
    assert docker("start", old).returncode == 0
    time.sleep(1.2)
    cutoff = time.time()
    time.sleep(0.2)
    assert docker("run", "--name", new, IMAGE, "true").returncode == 0
    docker("wait", old)
    pruned = docker("container", "prune", "-f", "--filter", f"until={cutoff:.3f}")
    assert pruned.returncode == 0, pruned.stderr
    left = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert old not in left and new in left
    pruned = docker("container", "prune", "-f", "--filter", "until=1h")
    assert new in docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    docker("rm", "-f", new)
