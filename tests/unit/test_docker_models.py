"""app.docker's pure helpers: names, booleans, filters, frames, the create body."""

from __future__ import annotations

import struct

import pytest

from app.docker import images, models, streams
from app.docker.errors import DockerError
from app.docker.params import parse_bool, parse_filters
from runtime.errors import NotFound


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("docker.io/library/busybox:latest", "busybox"),
        ("library/busybox", "busybox"),
        ("busybox:latest", "busybox"),
        ("busybox", "busybox"),
        # The store has no tags or namespaces: such a name stays as given (a 404).
        ("busybox:1.36", "busybox:1.36"),
        ("index.docker.io/me/tool:latest", "index.docker.io/me/tool:latest"),
    ],
)
def test_image_names_normalise(name: str, local: str) -> None:
    assert images.normalize(name) == local


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("true", True),
        ("True", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("", False),
        ("no", False),
    ],
)
def test_query_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_a_query_boolean_that_is_neither_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_filters_in_both_encodings() -> None:
    assert parse_filters('{"status": ["exited"]}') == {"status": ["exited"]}
    assert parse_filters('{"status": {"exited": true, "created": false}}') == {"status": ["exited"]}
    with pytest.raises(DockerError):
        parse_filters("[1]")


def test_frames_carry_stream_and_length() -> None:
    assert streams.frame("stderr", b"ab") == struct.pack(">BxxxL", 2, 2) + b"ab"
    big = b"x" * (streams.MAX_FRAME + 1)
    framed = streams.frame("stdout", big)
    assert len(framed) == len(big) + 16  # split into two frames


@pytest.mark.parametrize(
    ("value", "zero"),
    [
        (None, True),
        (0, True),
        ("", True),
        ([], True),
        ({}, True),
        ([0, 0], True),
        ({"Name": "", "MaximumRetryCount": 0}, True),
        ({"80/tcp": {}}, False),
        (True, False),
        (-1, False),
        ("x", False),
    ],
)
def test_zero_values(value: object, zero: bool) -> None:
    assert models.is_zero(value) is zero


@pytest.mark.parametrize(
    ("user", "native"),
    [
        ("", None),
        ("root", None),
        ("0", "0"),
        ("1000", "1000"),
        ("1000:100", "1000:100"),
        ("root:0", "0:0"),
    ],
)
def test_users(user: str, native: str | None) -> None:
    assert models.user(user) == native


def test_user_names_need_a_passwd_we_do_not_read() -> None:
    with pytest.raises(DockerError, match="give numbers"):
        models.user("nobody")


def test_security_options() -> None:
    assert models.security_options(["no-new-privileges"]) == {"no_new_privileges": True}
    assert models.security_options(["no-new-privileges:false"]) == {"no_new_privileges": False}
    assert models.security_options(["seccomp=unconfined"]) == {"seccomp": "unconfined"}
    with pytest.raises(DockerError, match="apparmor"):
        models.security_options(["apparmor=unconfined"])


def test_command_is_entrypoint_then_cmd() -> None:
    config = models.ContainerConfig(Image="x", Entrypoint=["a"], Cmd=["b", "c"])
    assert models.command(config) == ["a", "b", "c"]
    with pytest.raises(DockerError, match="no command"):
        models.command(models.ContainerConfig(Image="x"))


def test_binds_mounts_and_tmpfs_become_native_mounts() -> None:
    host = models.DockerHostConfig(
        Binds=["/srv:/data:ro", "/tmp/x:/x"],
        Mounts=[
            {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1024}},
            {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True},
        ],
        Tmpfs={"/run": "size=64m,rw", "/cache": ""},
    )
    assert models.mounts(host) == [
        {"type": "bind", "source": "/srv", "target": "/data", "read_only": True},
        {"type": "bind", "source": "/tmp/x", "target": "/x", "read_only": False},
        {"type": "tmpfs", "target": "/scratch", "read_only": False, "size_bytes": 1024},
        {"type": "bind", "source": "/a", "target": "/b", "read_only": True},
        {"type": "tmpfs", "target": "/run", "read_only": False, "size_bytes": 64 << 20},
        {"type": "tmpfs", "target": "/cache", "read_only": False},
    ]


@pytest.mark.parametrize(
    "host",
    [
        {"Binds": ["myvolume:/data:z"]},
        {"Binds": ["/a:/b:z"]},
        {"Binds": ["/a:/b:nocopy"]},
        {"Binds": ["/data"]},
        {
            "Mounts": [
                {
                    "Type": "volume",
                    "Source": "v",
                    "Target": "/v",
                    "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "x"}}},
                }
            ]
        },
        {"Mounts": [{"Type": "npipe", "Source": "v", "Target": "/v"}]},
        {
            "Mounts": [
                {
                    "Type": "bind",
                    "Source": "/a",
                    "Target": "/b",
                    "BindOptions": {"Propagation": "shared"},
                }
            ]
        },
        {"Tmpfs": {"/t": "noexec"}},
        {"Tmpfs": {"/t": "size=lots"}},
    ],
)
def test_mounts_we_do_not_implement_are_refused(host: dict[str, object]) -> None:
    with pytest.raises(DockerError):
        models.mounts(models.DockerHostConfig(**host))  # type: ignore[arg-type]


def test_a_volume_driver_we_lack_is_docker_s_missing_plugin() -> None:
    """Docker answers 404 for a driver it has no plugin for; ``local`` (and
    its labels) is ours."""
    mount = {"Type": "volume", "Source": "v", "Target": "/v"}
    nfs = {**mount, "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}
    with pytest.raises(NotFound, match="volume plugin: nfs"):
        models.mounts(models.DockerHostConfig(Mounts=[nfs]))
    local = {
        **mount,
        "VolumeOptions": {"DriverConfig": {"Name": "local"}, "Labels": {"a": "b"}},
    }
    assert models.mounts(models.DockerHostConfig(Mounts=[local])) == [
        {"type": "volume", "source": "v", "target": "/v", "read_only": False}
    ]


def test_volumes_become_native_volume_mounts() -> None:
    host = models.DockerHostConfig(
        Binds=["myvolume:/data", "ro-vol:/ro:ro", "/srv:/srv"],
        Mounts=[
            {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"NoCopy": True}},
            {"Type": "volume", "Target": "/anon"},
        ],
    )
    # docker-py sends the bind's target in Volumes too: it stays a bind.
    volumes: dict[str, object] = {"/srv": {}, "/cache": {}}
    assert models.mounts(host, volumes) == [
        {"type": "volume", "source": "myvolume", "target": "/data", "read_only": False},
        {"type": "volume", "source": "ro-vol", "target": "/ro", "read_only": True},
        {"type": "bind", "source": "/srv", "target": "/srv", "read_only": False},
        {"type": "volume", "source": "v", "target": "/v", "read_only": False},
        {"type": "volume", "source": None, "target": "/anon", "read_only": False},
        {"type": "volume", "target": "/cache", "read_only": False},
    ]


@pytest.mark.parametrize(
    ("policy", "native"),
    [
        (None, {"name": "no", "maximum_retry_count": 0}),
        ({"Name": "", "MaximumRetryCount": 0}, {"name": "no", "maximum_retry_count": 0}),
        (
            {"Name": "on-failure", "MaximumRetryCount": 2},
            {"name": "on-failure", "maximum_retry_count": 2},
        ),
        ({"Name": "always"}, {"name": "always", "maximum_retry_count": 0}),
    ],
)
def test_restart_policies_map_onto_the_native_one(
    policy: dict[str, object] | None, native: dict[str, object]
) -> None:
    assert models.restart_policy(models.DockerHostConfig(RestartPolicy=policy)) == native


@pytest.mark.parametrize(
    "policy",
    [{"Name": "always", "MaximumRetryCount": 3}, {"Name": "no", "Other": 1}],
)
def test_bad_restart_policies_are_refused(policy: dict[str, object]) -> None:
    with pytest.raises(DockerError):
        models.restart_policy(models.DockerHostConfig(RestartPolicy=policy))


def _config(host: dict[str, object] | None = None, **top: object) -> models.ContainerConfig:
    return models.ContainerConfig.model_validate(
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": host or {}, **top}
    )


def test_docker_options_map_onto_the_native_ones() -> None:
    host = {
        "CpuShares": 512,
        "CpuQuota": 50000,
        "CpuPeriod": 100000,
        "CpusetCpus": "0",
        "CpusetMems": "0",
        "MemorySwap": 1 << 30,
        "MemoryReservation": 1 << 25,
        "MemorySwappiness": 10,
        "GroupAdd": ["10", "audio"],
        "PidMode": "host",
        "IpcMode": "private",
        "UTSMode": "host",
        "ShmSize": 1 << 23,
        "Ulimits": [
            {"Name": "nofile", "Soft": 100, "Hard": 100},
            {"Name": "nproc", "Soft": 10, "Hard": 20},
        ],
        "Sysctls": {"net.ipv4.ip_forward": "1"},
        "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "", "CgroupPermissions": ""}],
        "DeviceCgroupRules": ["c 42:* rmw"],
        "LogConfig": {"Type": "local", "Config": {"max-size": "10m"}},
    }
    config = _config(host, StopSignal="SIGUSR1", StopTimeout=3)
    models.refuse_unsupported(config)  # every one is implemented
    assert models.options(config) == {
        "host_namespaces": ["pid", "uts"],
        "shm_size_bytes": 1 << 23,
        "group_add": ["10", "audio"],
        # nofile with Soft == Hard is the native limit (models.limits).
        "ulimits": [{"name": "nproc", "soft": 10, "hard": 20}],
        "sysctls": {"net.ipv4.ip_forward": "1"},
        "devices": [{"host": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}],
        "tuning": {
            "cpu_shares": 512,
            "cpu_quota_us": 50000,
            "cpu_period_us": 100000,
            "cpuset_cpus": "0",
            "cpuset_mems": "0",
            "memory_swap_bytes": 1 << 30,
            "memory_reservation_bytes": 1 << 25,
            "memory_swappiness": 10,
            "device_rules": ["c 42:* rmw"],
        },
        "log_driver": "local",
        "log_options": {"max-size": "10m"},
        "stop_signal": "SIGUSR1",
        "stop_timeout": 3,
    }


def test_zero_docker_options_are_the_defaults() -> None:
    # What the CLI sends on every `docker run`: zeros, -1 swappiness, json-file.
    config = _config(
        {"MemorySwappiness": -1, "CpuQuota": 0, "LogConfig": {"Type": "", "Config": {}}}
    )
    assert models.options(config) == {
        "host_namespaces": [],
        "shm_size_bytes": None,
        "group_add": [],
        "ulimits": [],
        "sysctls": {},
        "devices": [],
        "tuning": {"device_rules": []},
        "log_driver": "json-file",
        "log_options": {},
    }


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ({"LogConfig": {"Type": "syslog"}}, "logger: no log driver named 'syslog' is registered"),
        ({"PidMode": "container:abc"}, "HostConfig.PidMode 'container:abc'"),
        ({"IpcMode": "none"}, "HostConfig.IpcMode 'none'"),
    ],
)
def test_docker_options_we_cannot_honour_are_refused(host: dict[str, object], message: str) -> None:
    with pytest.raises(DockerError, match=message) as caught:
        models.options(_config(host))
    assert caught.value.status == 400


def test_options_docker_keeps_as_given() -> None:
    """Shown back by inspect as given: a bare Env name, Isolation,
    VolumeDriver, VolumesFrom, the Tmpfs strings; Runtime runc is ours."""
    config = models.ContainerConfig(
        Image="busybox",
        Env=["Foo", "Other=one", "Bar", "Bar=2"],
        HostConfig=models.DockerHostConfig(
            Runtime="runc",
            Isolation="default",
            VolumeDriver="local",
            VolumesFrom=["a:ro", "b"],
            Tmpfs={"/t": "size=3M"},
        ),
    )
    options = models.options(config)
    assert {k: options[k] for k in ("env_unset", "isolation", "volume_driver")} == {
        "env_unset": ["Foo"],
        "isolation": "default",
        "volume_driver": "local",
    }
    assert options["volumes_from"] == ["a:ro", "b"]
    assert options["tmpfs_given"] == {"/t": "size=3M"}


def test_a_runtime_other_than_runc_is_docker_s_400() -> None:
    config = models.ContainerConfig(
        Image="busybox", HostConfig=models.DockerHostConfig(Runtime="kata")
    )
    with pytest.raises(DockerError, match="unknown or invalid runtime name: kata") as err:
        models.options(config)
    assert err.value.status == 400


def test_binds_are_rprivate_and_other_propagations_are_refused() -> None:
    host = models.DockerHostConfig(
        Binds=["/a:/b:rw,rprivate"],
        Mounts=[
            {
                "Type": "bind",
                "Source": "/c",
                "Target": "/d",
                "BindOptions": {"Propagation": "rprivate"},
            }
        ],
    )
    assert [m["target"] for m in models.mounts(host)] == ["/b", "/d"]
    for bind in ("/a:/b:rw,rshared", "/a:/b:rslave"):
        with pytest.raises(DockerError, match="propagation r(shared|slave)") as err:
            models.mounts(models.DockerHostConfig(Binds=[bind]))
        assert err.value.status == 400
