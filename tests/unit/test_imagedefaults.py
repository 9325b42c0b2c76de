"""runtime/imagedefaults.py: Docker's rules for an image config under a create."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.imagedefaults import apply, environment, resolve_user
from runtime.images import Image
from runtime.images.oci import ImageConfig, ImageHealthcheck
from runtime.options import Healthcheck, Options
from runtime.spec import CreateRequest, Mount, SecurityRequest

CONFIG = ImageConfig(
    entrypoint=("/entry",),
    cmd=("default", "args"),
    env=("PATH=/bin", "A=1", "EMPTY"),
    working_dir="/srv/app",
    user="1000:1000",
    labels={"a": "image", "b": "image"},
)


def pulled(config: ImageConfig | None = CONFIG, lowers: tuple[str, ...] = ()) -> Image:
    return Image("app:1", False, None, kind="pulled", config=config, lowers=lowers)


@pytest.mark.parametrize(
    ("command", "entrypoint", "argv"),
    [
        ((), None, ("/entry", "default", "args")),
        (("mine",), None, ("/entry", "mine")),
        ((), ("/other",), ("/other",)),  # an entrypoint drops the image's Cmd
        (("x",), ("/other",), ("/other", "x")),
        (("sh",), (), ("sh",)),  # [] clears the Entrypoint
    ],
)
def test_docker_combination_rules(
    command: tuple[str, ...], entrypoint: tuple[str, ...] | None, argv: tuple[str, ...]
) -> None:
    request = CreateRequest(command=command, entrypoint=entrypoint, image="app:1")
    assert apply(request, pulled()).command == argv


def test_env_workdir_user_and_labels_under_the_request() -> None:
    request = CreateRequest(env={"A": "2"}, labels={"b": "mine"})
    got = apply(request, pulled())
    assert got.env == {"PATH": "/bin", "A": "2", "EMPTY": ""}
    assert got.workdir == "/srv/app" and got.security.user == "1000:1000"
    assert got.labels == {"a": "image", "b": "mine"}
    mine = CreateRequest(workdir="/tmp", security=SecurityRequest(user="0"))
    assert (apply(mine, pulled()).workdir, apply(mine, pulled()).security.user) == ("/tmp", "0")


@pytest.mark.parametrize("image", [pulled(ImageConfig()), Image("busybox", True, "/x")])
def test_no_command_anywhere_is_a_422_on_command(image: Image) -> None:
    with pytest.raises(InvalidArgument) as err:
        apply(CreateRequest(), image)
    assert err.value.field == "command"


def test_an_image_without_config_keeps_the_request() -> None:
    request = CreateRequest(command=("a",), entrypoint=("e",))
    assert apply(request, Image("busybox", True, "/x")).command == ("e", "a")


def test_environment_of_key_value_strings() -> None:
    assert environment(["A=1=2", "B", "=x"]) == {"A": "1=2", "B": ""}


def test_user_names_from_the_topmost_layer_and_no_link_followed(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (top / "etc").mkdir(parents=True)
    (bottom / "etc").mkdir(parents=True)
    (bottom / "etc" / "passwd").write_text("app:x:7:8::/:/bin/sh\n")
    (bottom / "etc" / "group").write_text("staff:x:50:\n")
    lowers = (str(top), str(bottom))
    assert resolve_user("app", lowers) == "7:8"
    assert resolve_user("app:staff", lowers) == "7:50"
    assert resolve_user("12:staff", lowers) == "12:50"
    assert resolve_user("12:34", ()) == "12:34"
    (top / "etc" / "passwd").write_text("app:x:9:9::/:/bin/sh\n")
    assert resolve_user("app", lowers) == "9:9"
    os.unlink(top / "etc" / "passwd")
    os.symlink("/etc/passwd", top / "etc" / "passwd")  # the host's: never read
    with pytest.raises(InvalidArgument) as err:
        resolve_user("root", lowers)
    assert err.value.field == "user" and "root" in str(err.value)


def test_each_image_volume_nothing_else_mounts_gets_an_anonymous_volume() -> None:
    image = pulled(ImageConfig(cmd=("x",), volumes=("/data", "/logs/", "/cache", "/var/db")))
    request = CreateRequest(mounts=(Mount("bind", "/cache", source="/srv"),))
    inherited = (Mount("volume", "/var/db", volume="shared"),)
    got = apply(request, image, inherited)
    # the request's mount and the volumes_from one win; /logs/ is normalised
    assert got.mounts == (
        Mount("bind", "/cache", source="/srv"),
        Mount("volume", "/data"),
        Mount("volume", "/logs"),
    )
    assert apply(CreateRequest(command=("x",)), Image("busybox", True, "/x")).mounts == ()
    with pytest.raises(InvalidArgument) as err:
        apply(CreateRequest(), pulled(ImageConfig(cmd=("x",), volumes=("/a\0b",))))
    assert err.value.field == "image"


def test_the_stop_signal_is_the_requests_else_the_images_else_sigterm() -> None:
    image = pulled(ImageConfig(cmd=("x",), stop_signal="SIGQUIT"))
    assert apply(CreateRequest(), image).options.stop_signal == "SIGQUIT"
    mine = CreateRequest(options=Options(stop_signal="SIGUSR1"))
    assert apply(mine, image).options.stop_signal == "SIGUSR1"
    assert apply(CreateRequest(), pulled(ImageConfig(cmd=("x",)))).options.stop_signal == "SIGTERM"
    with pytest.raises(InvalidArgument) as err:
        apply(CreateRequest(), pulled(ImageConfig(cmd=("x",), stop_signal="SIGNOPE")))
    assert err.value.field == "image" and "SIGNOPE" in err.value.message


def test_the_images_healthcheck_applies_unless_the_create_has_one_or_refuses_it() -> None:
    shell = ImageHealthcheck(("CMD-SHELL", "test -e /ok"), interval_ns=2 * 10**9, retries=5)
    image = pulled(ImageConfig(cmd=("x",), healthcheck=shell))
    got = apply(CreateRequest(), image).options.healthcheck
    assert got == Healthcheck(("/bin/sh", "-c", "test -e /ok"), interval_seconds=2.0, retries=5)
    argv = pulled(ImageConfig(cmd=("x",), healthcheck=ImageHealthcheck(("CMD", "/probe", "-q"))))
    assert apply(CreateRequest(), argv).options.healthcheck == Healthcheck(("/probe", "-q"))
    mine = Options(healthcheck=Healthcheck(("/mine",)))
    assert apply(CreateRequest(options=mine), image).options.healthcheck == mine.healthcheck
    refused = CreateRequest(options=Options(no_healthcheck=True))
    assert apply(refused, image).options.healthcheck is None
    none = pulled(ImageConfig(cmd=("x",), healthcheck=ImageHealthcheck(("NONE",))))
    assert apply(CreateRequest(), none).options.healthcheck is None
    for test in (("CMD",), ("CMD-SHELL", "a", "b"), ("WHAT", "x")):
        bad = pulled(ImageConfig(cmd=("x",), healthcheck=ImageHealthcheck(test)))
        with pytest.raises(InvalidArgument) as err:
            apply(CreateRequest(), bad)
        assert err.value.field == "image" and "Healthcheck" in err.value.message
    slow = ImageHealthcheck(("CMD", "x"), interval_ns=10**15)
    with pytest.raises(InvalidArgument, match="healthcheck.interval_seconds"):
        apply(CreateRequest(), pulled(ImageConfig(cmd=("x",), healthcheck=slow)))


def test_a_bare_name_unsets_the_image_s_variable_too() -> None:
    """Docker's ``Env: ["A"]``: neither the image's A nor a default reaches the command."""
    request = CreateRequest(env={"B": "1"}, options=Options(env_unset=("A", "PATH")))
    got = apply(request, pulled())
    assert got.env == {"EMPTY": "", "B": "1"}
    assert got.options.env_unset == ("A", "PATH")
