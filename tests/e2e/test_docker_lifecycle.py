"""The lifecycle verbs through the real ``docker`` CLI and docker-py
(app/docker/lifecycle.py over runtime/lifecycle.py), with real containers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, DockerCli, cli, ok
from tests.e2e.helpers import unique

__all__ = ["cli"]  # a fixture


@pytest.fixture
def sdk(service: Service) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    yield client
    client.close()


def _detached(cli: DockerCli, *command: str) -> str:
    name = unique("dl")
    ok(cli("run", "-d", "--name", name, IMAGE, *(command or ("sleep", "300"))))
    return name


def _inspect(cli: DockerCli, name: str, template: str) -> str:
    return ok(cli("inspect", "--format", template, name)).strip()


def test_cli_restart_starts_it_again(cli: DockerCli) -> None:
    name = _detached(cli, "sh", "-c", "echo started; exec sleep 300")
    pid = _inspect(cli, name, "{{.State.Pid}}")
    assert ok(cli("restart", "-t", "1", name)).strip() == name
    assert _inspect(cli, name, "{{.State.Status}}") == "running"
    assert _inspect(cli, name, "{{.State.Pid}}") != pid
    deadline = time.monotonic() + 20
    while ok(cli("logs", name)).count("started") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok(cli("rm", "-f", name))


def test_cli_start_of_an_exited_container(cli: DockerCli) -> None:
    name = unique("dl")
    ok(cli("run", "--name", name, IMAGE, "sh", "-c", "echo once"))
    ok(cli("start", "-a", name))
    assert ok(cli("logs", name)) == "once\nonce\n"
    ok(cli("rm", name))


def test_cli_rename_and_its_clash(cli: DockerCli) -> None:
    first, second = _detached(cli), _detached(cli)
    new = unique("renamed")
    ok(cli("rename", first, new))
    assert _inspect(cli, new, "{{.Name}}") == f"/{new}"
    clash = cli("rename", second, new)
    assert clash.returncode == 1
    assert "already in use" in clash.stderr
    ok(cli("rm", "-f", new, second))


def test_cli_pause_unpause_and_a_refused_exec(cli: DockerCli) -> None:
    name = _detached(cli)
    assert ok(cli("pause", name)).strip() == name
    assert _inspect(cli, name, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    listed = ok(cli("ps", "--filter", f"name={name}", "--format", "{{.Status}}"))
    assert "(Paused)" in listed
    refused = cli("exec", name, "true")
    assert refused.returncode != 0
    assert "is paused, unpause the container before exec" in refused.stderr
    again = cli("pause", name)
    assert again.returncode == 1 and "already paused" in again.stderr
    assert ok(cli("unpause", name)).strip() == name
    assert _inspect(cli, name, "{{.State.Status}} {{.State.Paused}}") == "running false"
    ok(cli("exec", name, "true"))
    # A paused container can be stopped, as Docker's can.
    ok(cli("pause", name))
    ok(cli("stop", "-t", "2", name))
    assert _inspect(cli, name, "{{.State.Status}}") == "exited"
    stopped = cli("pause", name)
    assert stopped.returncode == 1 and "not running" in stopped.stderr
    ok(cli("rm", name))


def test_cli_update_changes_the_limits(cli: DockerCli) -> None:
    name = unique("dl")
    ok(cli("run", "-d", "--name", name, "--memory", "64m", IMAGE, "sleep", "300"))
    ok(cli("update", "--memory", "96m", "--memory-swap", "96m", "--cpus", "0.5", name))
    assert _inspect(cli, name, "{{.HostConfig.Memory}}") == str(96 << 20)
    assert _inspect(cli, name, "{{.HostConfig.NanoCpus}}") == "500000000"
    ok(cli("update", "--pids-limit", "40", name))
    assert _inspect(cli, name, "{{.HostConfig.PidsLimit}}") == "40"
    ok(cli("update", "--cpu-shares", "512", "--restart", "on-failure:3", name))
    assert _inspect(cli, name, "{{.HostConfig.CpuShares}}") == "512"
    policy = "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
    assert _inspect(cli, name, policy) == "on-failure:3"
    refused = cli("update", "--blkio-weight", "300", name)
    assert refused.returncode == 1 and "BlkioWeight" in refused.stderr
    ok(cli("rm", "-f", name))


def test_cli_top(cli: DockerCli) -> None:
    name = _detached(cli, "sh", "-c", "sleep 301 & exec sleep 300")
    deadline = time.monotonic() + 20
    while "sleep 301" not in (out := ok(cli("top", name))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lines = out.splitlines()
    assert "PID" in lines[0] and "CMD" in lines[0]
    assert sorted(line.split(None, 7)[-1] for line in lines[1:]) == ["sleep 300", "sleep 301"]
    custom = ok(cli("top", name, "-o", "pid,comm")).splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3
    ok(cli("rm", "-f", name))


def test_sdk_verbs(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, ["sleep", "300"], name=unique("sdk"), detach=True)
    container.pause()
    container.reload()
    assert container.status == "paused"
    with pytest.raises(APIError) as caught:
        container.exec_run("true")
    assert caught.value.status_code == 409
    container.unpause()
    new = unique("sdk-renamed")
    container.rename(new)
    container.reload()
    assert container.name == new
    top = container.top()
    assert top["Titles"][-1] == "CMD" and top["Processes"][0][-1] == "sleep 300"
    container.update(mem_limit="80m")
    container.reload()
    assert container.attrs["HostConfig"]["Memory"] == 80 << 20
    container.restart(timeout=1)
    container.reload()
    assert container.status == "running"
    container.remove(force=True)
