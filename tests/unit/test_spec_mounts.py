"""runtime.spec: Mount and RootfsPlan, their rules and their trip through JSON."""

from __future__ import annotations

import json

import pytest

from runtime.spec import ContainerSpec, Mount, RootfsPlan, Security, from_dict, to_dict, under


def test_a_spec_with_mounts_and_a_plan_survives_json() -> None:
    spec = ContainerSpec(
        command=("sh",),
        hostname="h",
        image="busybox",
        read_only=True,
        mounts=(
            Mount("bind", "/data", source="/srv", read_only=True),
            Mount("tmpfs", "/scratch", size_bytes=4096),
        ),
        rootfs=RootfsPlan(root="/s/c/layer/root", lower="/s/i/busybox/rootfs", layer="/s/c/layer"),
    )
    back = from_dict(ContainerSpec, json.loads(json.dumps(to_dict(spec))))
    assert back == spec
    assert isinstance(back.mounts[0], Mount) and isinstance(back.rootfs, RootfsPlan)


def test_defaults_are_the_host_image_and_no_plan() -> None:
    spec = ContainerSpec(command=("true",), hostname="h")
    assert (spec.image, spec.read_only, spec.mounts, spec.rootfs) == ("host", False, (), None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "npipe", "target": "/d"}, "mount type must be one of bind, tmpfs, volume"),
        ({"type": "volume", "target": "/d", "volume": "-x"}, "invalid volume name"),
        ({"type": "volume", "target": "/d", "source": "rel"}, "absolute path"),
        ({"type": "volume", "target": "/d", "size_bytes": 1}, "for tmpfs"),
        ({"type": "bind", "target": "/d", "source": "/s", "volume": "v"}, "only a volume"),
        ({"type": "tmpfs", "target": "d"}, "target must be an absolute path"),
        ({"type": "tmpfs", "target": "/a/../b"}, "target must not contain '..'"),
        ({"type": "tmpfs", "target": "//"}, "target must not be /"),
        ({"type": "tmpfs", "target": "/a\0b"}, "without NUL"),
        ({"type": "bind", "target": "/d"}, "needs an absolute source"),
        ({"type": "bind", "target": "/d", "source": "rel"}, "needs an absolute source"),
        ({"type": "bind", "target": "/d", "source": "/s", "size_bytes": 1}, "for tmpfs"),
        ({"type": "tmpfs", "target": "/d", "source": "/s"}, "has no source"),
        ({"type": "tmpfs", "target": "/d", "size_bytes": 0}, "must be positive"),
    ],
)
def test_mount_rules(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mount(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/proc", True),
        ("/proc/sys/", True),
        ("/procfs", False),
        ("/tmp/x/../y", True),
        ("/", False),
    ],
)
def test_under(path: str, inside: bool) -> None:
    assert under(path, ("/proc", "/tmp")) is inside


def test_security_default_has_no_user_namespace() -> None:
    assert Security().userns_host_id is None
