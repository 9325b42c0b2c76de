"""app/commands.py: each body maps onto the runtime's one typed request."""

from __future__ import annotations

import pytest

from app import commands
from app.docker import models
from app.docker.errors import DockerError
from app.schemas import ContainerCreate, ExecCreate, LimitsCreate, LimitsPublic
from runtime.images import Image
from runtime.spec import (
    LIMIT_BOUNDS,
    CreateRequest,
    ExecRequest,
    ExecSpec,
    Limits,
    Mount,
    SecurityRequest,
)


def test_a_full_native_body_maps_field_by_field() -> None:
    body = ContainerCreate.model_validate(
        {
            "command": ["sh", "-c", "true"],
            "name": "web",
            "hostname": "box",
            "env": {"A": "1"},
            "workdir": "/tmp",
            "user": "1000:7",
            "cap_add": ["NET_ADMIN"],
            "cap_drop": ["CHOWN"],
            "seccomp": "unconfined",
            "no_new_privileges": False,
            "userns": True,
            "tty": True,
            "stdin": True,
            "tty_size": {"rows": 24, "cols": 80},
            "auto_remove": True,
            "labels": {"k": "v"},
            "limits": {"memory_bytes": 64 << 20, "cpus": 0.5},
            "image": "busybox",
            "read_only": True,
            "mounts": [{"type": "tmpfs", "target": "/scratch", "size_bytes": 4096}],
        }
    )
    assert commands.create_request(body) == CreateRequest(
        command=("sh", "-c", "true"),
        name="web",
        hostname="box",
        env={"A": "1"},
        workdir="/tmp",
        labels={"k": "v"},
        auto_remove=True,
        limits=Limits(memory_bytes=64 << 20, cpus=0.5),
        image="busybox",
        read_only=True,
        mounts=(Mount("tmpfs", "/scratch", size_bytes=4096),),
        security=SecurityRequest("1000:7", ("NET_ADMIN",), ("CHOWN",), "unconfined", False, True),
        tty=True,
        stdin=True,
        tty_size=(24, 80),
    )


def test_a_minimal_body_takes_the_defaults() -> None:
    request = commands.create_request(ContainerCreate(command=["true"]), start=False)
    assert request == CreateRequest(command=("true",), image="host", start=False)


def test_an_exec_body_maps_onto_its_spec() -> None:
    body = ExecCreate.model_validate(
        {"command": ["id"], "tty": True, "user": "app", "tty_size": {"rows": 2, "cols": 3}}
    )
    assert commands.exec_request(body) == ExecRequest(
        ExecSpec(command=("id",), tty=True, user="app"), tty_size=(2, 3)
    )


def test_the_docker_create_body_goes_through_the_native_schema() -> None:
    config = models.ContainerConfig.model_validate(
        {"Image": "host", "Cmd": ["true"], "OpenStdin": True, "StdinOnce": True}
    )
    request = commands.docker_create_request(config, "/x", Image("host", True, None))
    assert (request.name, request.start, request.stdin, request.stdin_once) == (
        "x",
        False,
        True,
        True,
    )
    bad = models.ContainerConfig.model_validate({"Image": "host", "Cmd": ["true"], "Hostname": "-"})
    with pytest.raises(DockerError) as info:
        commands.docker_create_request(bad, "", Image("host", True, None))
    assert info.value.status == 400 and "hostname" in info.value.message


def test_the_docker_exec_body_maps_onto_an_exec_request() -> None:
    config = models.ExecConfig.model_validate(
        {"Cmd": ["sh"], "Tty": True, "AttachStdin": True, "ConsoleSize": [24, 80]}
    )
    assert commands.docker_exec_request(config) == ExecRequest(
        ExecSpec(command=("sh",), tty=True, stdin=True), tty_size=(24, 80)
    )
    refused = models.ExecConfig.model_validate({"Cmd": ["sh"], "Privileged": True})
    with pytest.raises(DockerError, match="Privileged"):
        commands.docker_exec_request(refused)


def test_the_limit_models_are_derived_from_the_one_declaration() -> None:
    assert list(LimitsCreate.model_fields) == list(LIMIT_BOUNDS)
    assert list(LimitsPublic.model_fields) == list(LIMIT_BOUNDS)
    schema = LimitsCreate.model_json_schema()["properties"]
    for name, (low, high) in LIMIT_BOUNDS.items():
        bounds = schema[name]["anyOf"][0]
        assert (bounds["minimum"], bounds["maximum"]) == (low, high)
