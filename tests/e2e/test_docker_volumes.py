"""Volumes, restart policies and init through the real ``docker`` CLI and
docker-py: ``volume create/ls/inspect/rm/prune``, ``run -v vol:/data``,
``-v /path`` with ``rm -v``, ``--volumes-from``, ``--restart on-failure:2``,
``--init``; docker-py's ``volumes.create`` and ``containers.run(volumes=...)``,
a bind and the ``Volumes`` key together as testcontainers sends them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker as docker_py
import pytest
from docker.errors import APIError, NotFound

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, run_docker
from tests.e2e.helpers import eventually, unique

Docker = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def docker(service: Service, tmp_path: Path) -> Docker:
    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        result = run_docker(service, tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        return result

    return call


@pytest.fixture
def sdk(service: Service) -> Iterator[docker_py.DockerClient]:
    client = docker_py.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    yield client
    client.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _child_runs(pid: int, comm: str) -> bool:
    """Whether a child of ``pid`` (a host pid) has exec'd ``comm``."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return any(Path(f"/proc/{c}/comm").read_text().strip() == comm for c in children)
    except FileNotFoundError:
        return False


def test_cli_volume_create_ls_inspect_rm(docker: Docker) -> None:
    name = unique("vol")
    assert ok(docker("volume", "create", "--label", "team=a", name)) == f"{name}\n"
    assert name in ok(docker("volume", "ls", "--format", "{{.Name}}")).split()
    filtered = ok(docker("volume", "ls", "-q", "--filter", "label=team=a")).split()
    assert name in filtered
    inspected = json.loads(ok(docker("volume", "inspect", name)))[0]
    assert (inspected["Driver"], inspected["Labels"]) == ("local", {"team": "a"})
    assert (
        ok(docker("run", "--rm", "-v", f"{name}:/data", IMAGE, "sh", "-c", "echo hi > /data/f"))
        == ""
    )
    assert ok(docker("run", "--rm", "-v", f"{name}:/data:ro", IMAGE, "cat", "/data/f")) == "hi\n"
    refused = docker("run", "--rm", "-v", f"{name}:/data:ro", IMAGE, "touch", "/data/g")
    assert refused.returncode == 1 and "Read-only file system" in refused.stderr
    # In use by a container (even stopped): refused, then removed with it gone.
    keeper = unique("keep")
    ok(docker("create", "--name", keeper, "-v", f"{name}:/data", IMAGE, "true"))
    busy = docker("volume", "rm", name)
    assert busy.returncode == 1 and "in use" in busy.stderr
    ok(docker("rm", "-f", keeper))
    assert ok(docker("volume", "rm", name)) == f"{name}\n"
    missing = docker("volume", "inspect", name)
    assert missing.returncode == 1 and "no such volume" in missing.stderr.lower()


def test_cli_anonymous_volume_removed_by_rm_v(docker: Docker) -> None:
    name = unique("anon")
    ok(docker("run", "--name", name, "-v", "/cache", IMAGE, "sh", "-c", "echo x > /cache/x"))
    mounts = json.loads(ok(docker("inspect", name)))[0]["Mounts"]
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/cache")]
    volume = mounts[0]["Name"]
    assert volume in ok(docker("volume", "ls", "-q")).split()
    ok(docker("rm", "-v", name))
    assert volume not in ok(docker("volume", "ls", "-q")).split()


def test_cli_volumes_from(docker: Docker) -> None:
    source, volume = unique("src"), unique("shared")
    ok(
        docker(
            "run",
            "--name",
            source,
            "-v",
            f"{volume}:/shared",
            IMAGE,
            "sh",
            "-c",
            "echo s > /shared/s",
        )
    )
    assert ok(docker("run", "--rm", "--volumes-from", source, IMAGE, "cat", "/shared/s")) == "s\n"
    ok(docker("rm", source))
    ok(docker("volume", "rm", volume))


def test_cli_restart_on_failure(docker: Docker) -> None:
    name = unique("restart")
    ok(
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            "on-failure:2",
            IMAGE,
            "sh",
            "-c",
            "echo run; exit 5",
        )
    )
    deadline = time.monotonic() + 30
    while True:
        state = json.loads(ok(docker("inspect", name)))[0]
        if state["RestartCount"] == 2 and state["State"]["Status"] == "exited":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert state["State"]["ExitCode"] == 5
    time.sleep(1)
    assert json.loads(ok(docker("inspect", name)))[0]["RestartCount"] == 2
    assert ok(docker("logs", name)) == "run\n" * 3
    ok(docker("rm", name))


def test_cli_run_init(docker: Docker) -> None:
    out = ok(docker("run", "--rm", "--init", IMAGE, "sh", "-c", "echo $$; cat /proc/1/comm"))
    assert out == "2\ninit\n"
    name = unique("init")
    ok(docker("run", "-d", "--init", "--name", name, IMAGE, "sleep", "60"))
    assert json.loads(ok(docker("inspect", name)))[0]["HostConfig"]["Init"] is True
    # tini blocks the signals it forwards before it forks the command: once
    # the command runs, a SIGTERM reaches it (earlier, tini as pid 1 with no
    # handler would ignore it, pid_namespaces(7)).
    pid = json.loads(ok(docker("inspect", name)))[0]["State"]["Pid"]
    eventually(lambda: _child_runs(pid, "sleep"), what="tini's command")
    ok(docker("stop", name))
    # sleep died of the SIGTERM tini forwarded (143), not of a SIGKILL (137).
    assert json.loads(ok(docker("inspect", name)))[0]["State"]["ExitCode"] == 143
    ok(docker("rm", name))


def test_sdk_volumes_create_and_run_with_volumes(
    sdk: docker_py.DockerClient, tmp_path: Path
) -> None:
    name = unique("sdkvol")
    volume = sdk.volumes.create(name, labels={"k": "v"})
    assert (volume.name, volume.attrs["Labels"]) == (name, {"k": "v"})
    assert name in [v.name for v in sdk.volumes.list(filters={"label": "k=v"})]
    (tmp_path / "in").write_text("from host\n")
    # A bind and a named volume: docker-py sends the bind's target in Volumes too.
    out = sdk.containers.run(
        IMAGE,
        ["sh", "-c", "cat /host/in; echo v > /vol/v; cat /vol/v"],
        volumes={
            str(tmp_path): {"bind": "/host", "mode": "ro"},
            name: {"bind": "/vol", "mode": "rw"},
        },
        remove=True,
    )
    assert out == b"from host\nv\n"
    volume.reload()
    with pytest.raises(NotFound):
        sdk.volumes.get("no-such-volume-xyz")
    volume.remove()
    with pytest.raises(NotFound):
        sdk.volumes.get(name)


def test_sdk_low_level_create_with_volumes_and_binds(
    sdk: docker_py.DockerClient, tmp_path: Path
) -> None:
    api = sdk.api
    (tmp_path / "f").write_text("bound\n")
    config = api.create_host_config(binds={str(tmp_path): {"bind": "/mnt", "mode": "rw"}})
    created = api.create_container(
        IMAGE, ["cat", "/mnt/f"], volumes=["/mnt", "/anon"], host_config=config
    )
    api.start(created["Id"])
    assert api.wait(created["Id"])["StatusCode"] == 0
    assert api.logs(created["Id"]) == b"bound\n"
    mounts = {m["Destination"]: m["Type"] for m in api.inspect_container(created["Id"])["Mounts"]}
    assert mounts == {"/mnt": "bind", "/anon": "volume"}
    api.remove_container(created["Id"], v=True)
    with pytest.raises(APIError):
        api.create_volume("bad/name")


def test_cli_run_rm_removes_its_anonymous_volume_but_not_a_named_one(docker: Docker) -> None:
    named = unique("kept")
    before = set(ok(docker("volume", "ls", "-q")).split())
    out = ok(
        docker(
            "run",
            "--rm",
            "-v",
            "/scratch",
            "-v",
            f"{named}:/kept",
            IMAGE,
            "sh",
            "-c",
            "echo x | tee /scratch/x",
        )
    )
    assert out == "x\n"
    deadline = time.monotonic() + 10
    while (after := set(ok(docker("volume", "ls", "-q")).split())) - before != {named}:
        assert time.monotonic() < deadline, after - before
        time.sleep(0.1)
    ok(docker("volume", "rm", named))
