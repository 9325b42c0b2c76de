"""The create, update and prune options docker-py sends (issue 16), with
docker-py against a real service and real containers: what inspect shows
back, what the container sees, what Docker refuses (app/docker/createopts.py,
runtime/lifecycle.py ``update``, runtime/runtime.py ``remove``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError, NotFound

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE
from tests.e2e.helpers import unique


@pytest.fixture
def api(service: Service) -> Iterator[docker.APIClient]:
    client = docker.APIClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    made: list[str] = []
    client.made = made
    yield client
    for container in made:
        try:
            client.remove_container(container, force=True, v=True)
        except NotFound:
            pass
    client.close()


def _create(api: docker.APIClient, *args: object, **kwargs: object) -> str:
    container: str = api.create_container(IMAGE, *args, **kwargs)["Id"]
    api.made.append(container)
    return container


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as value:
                    return value.read().strip()
    raise AssertionError(f"{pid} is in no {controller} cgroup")


def test_options_shown_back_as_given_and_what_the_container_sees(
    api: docker.APIClient,
) -> None:
    source = _create(api, ["true"], name=unique("from"), volumes=["/shared"])
    container = _create(
        api,
        ["/bin/busybox", "env"],
        environment={"Foo": None, "Other": "one", "Blank": "", "PATH": None},
        runtime="runc",
        host_config=api.create_host_config(
            isolation="default",
            tmpfs={"/t": "size=3M"},
            volumes_from=[source],
            volume_driver="local",
        ),
    )
    inspected = api.inspect_container(container)
    host, env = inspected["HostConfig"], inspected["Config"]["Env"]
    assert (host["Runtime"], host["Isolation"], host["VolumeDriver"]) == (
        "runc",
        "default",
        "local",
    )
    assert host["Tmpfs"] == {"/t": "size=3M"}
    assert host["VolumesFrom"] == [source]
    assert "Foo" in env and "Other=one" in env and "Blank=" in env
    api.start(container)
    assert api.wait(container)["StatusCode"] == 0
    out = api.logs(container).decode()
    lines = out.splitlines()
    assert "Other=one" in lines and "Blank=" in lines
    # A bare name unsets, even a default (moby's ReplaceOrAppendEnvValues).
    assert not [line for line in lines if line.startswith(("Foo=", "PATH="))]
    sized = _create(api, ["df", "/t"], host_config=api.create_host_config(tmpfs={"/t": "size=3M"}))
    api.start(sized)
    api.wait(sized)
    assert " 3072 " in api.logs(sized).decode()  # df's 1K blocks of a 3 MiB tmpfs


def test_docker_s_refusals_of_runtime_isolation_and_driver(api: docker.APIClient) -> None:
    with pytest.raises(APIError) as caught:
        _create(api, ["true"], runtime="kata")
    assert caught.value.status_code == 400
    assert "unknown or invalid runtime name: kata" in str(caught.value.explanation)
    with pytest.raises(APIError) as caught:
        _create(api, ["true"], host_config=api.create_host_config(isolation="hyperv"))
    assert caught.value.status_code == 400 and "isolation" in str(caught.value.explanation)
    # A driver we lack is Docker's missing plugin once a volume is to be made;
    # without volumes it is only recorded (docker-py's test_create_with_volume_driver).
    with pytest.raises(NotFound, match="volume plugin: foo"):
        _create(
            api, ["true"], volumes=["/v"], host_config=api.create_host_config(volume_driver="foo")
        )
    plain = _create(api, ["true"], host_config=api.create_host_config(volume_driver="foo"))
    assert api.inspect_container(plain)["HostConfig"]["VolumeDriver"] == "foo"
    with pytest.raises(NotFound, match="volume plugin: invalid.driver"):
        api.create_volume(unique("vol"), "invalid.driver")


def test_a_volume_mount_with_labels_and_the_local_driver(api: docker.APIClient) -> None:
    name = unique("lv")
    mount = docker.types.Mount(
        "/mnt",
        name,
        type="volume",
        labels={"team": "a"},
        driver_config=docker.types.DriverConfig("local"),
    )
    container = _create(api, ["true"], host_config=api.create_host_config(mounts=[mount]))
    mounted = [m for m in api.inspect_container(container)["Mounts"] if m["Destination"] == "/mnt"]
    assert [(m["Name"], m["RW"]) for m in mounted] == [(name, True)]
    assert api.inspect_volume(name)["Labels"] == {"team": "a"}
    api.remove_container(container)
    api.remove_volume(name)


def test_a_container_its_policy_restarts_is_removed_only_by_force(
    api: docker.APIClient,
) -> None:
    container = _create(
        api, ["sleep", "1"], host_config=api.create_host_config(restart_policy={"Name": "always"})
    )
    api.start(container)
    api.wait(container)
    with pytest.raises(APIError) as caught:
        api.remove_container(container)
    assert caught.value.status_code == 409
    assert "stop the container before removing" in str(caught.value.explanation)
    api.remove_container(container, force=True)
    time.sleep(0.5)  # past the first restart's delay: nothing brings it back
    assert not api.containers(all=True, filters={"id": container})


def test_update_of_restart_policy_and_cpu_shares(api: docker.APIClient) -> None:
    container = _create(
        api,
        ["sleep", "60"],
        host_config=api.create_host_config(restart_policy={"Name": "always"}, cpu_shares=2),
    )
    api.start(container)
    api.update_container(
        container,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 42},
        cpu_shares=512,
        mem_reservation=64 << 20,
    )
    inspected = api.inspect_container(container)
    host = inspected["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 42}
    assert (host["CpuShares"], host["MemoryReservation"]) == (512, 64 << 20)
    pid = inspected["State"]["Pid"]
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "512"
    assert _cgroup_file(pid, "memory", "memory.soft_limit_in_bytes") == str(64 << 20)
    with pytest.raises(APIError) as caught:
        api.update_container(container, restart_policy={"Name": "sometimes"})
    assert caught.value.status_code == 400


def test_prune_reclaims_the_writable_layers(api: docker.APIClient) -> None:
    wrote = _create(api, ["sh", "-c", "head -c 20000 /dev/zero > /data.bin"])
    running = _create(api, ["sleep", "60"])
    api.start(wrote)
    api.start(running)
    assert api.wait(wrote)["StatusCode"] == 0
    result = api.prune_containers()
    assert wrote in result["ContainersDeleted"] and running not in result["ContainersDeleted"]
    assert result["SpaceReclaimed"] >= 20000
