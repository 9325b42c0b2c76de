"""app.docker's pure helpers: names, booleans, filters, frames, the create body."""

from __future__ import annotations

import struct

import pytest

from app.docker import images, models, streams
from app.docker.errors import DockerError
from app.docker.params import parse_bool, parse_filters


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
                    "VolumeOptions": {"DriverConfig": {"Name": "nfs"}},
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
