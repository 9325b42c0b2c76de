"""User mounts: bind (read-write and read-only, dirs and files), tmpfs with a size,
and the validation of targets and sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run


def sh(client: httpx.Client, script: str, **spec: object) -> tuple[int, str]:
    container = run(client, ["sh", "-c", script], **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"]))


def test_a_bind_mount_shares_a_host_directory(client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "in").write_text("from the host\n")
    bind = {"type": "bind", "source": str(tmp_path), "target": "/data"}
    code, out = sh(
        client, "cat /data/in; echo from-container > /data/out", image="busybox", mounts=[bind]
    )
    assert (code, out) == (0, "from the host\n")
    assert (tmp_path / "out").read_text() == "from-container\n"


def test_a_read_only_bind_cannot_be_written(client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("original\n")
    (tmp_path / "sub").mkdir()
    bind = {"type": "bind", "source": str(tmp_path), "target": "/data", "read_only": True}
    for image in ("busybox", "host"):
        target = "/data" if image == "busybox" else "/tmp/data"
        code, out = sh(
            client,
            f"cat {target}/keep; echo x > {target}/keep; touch {target}/new {target}/sub/new; "
            f"rm {target}/keep; echo done",
            image=image,
            mounts=[{**bind, "target": target}],
        )
        assert out.startswith("original\ndone\n")  # stdout, then stderr
        assert out.count("Read-only file system") == 4, out
    assert (tmp_path / "keep").read_text() == "original\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_a_file_can_be_bound(client: httpx.Client, tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("setting=1\n")
    bind = {"type": "bind", "source": str(conf), "target": "/etc/app/app.conf", "read_only": True}
    code, out = sh(client, "cat /etc/app/app.conf", image="busybox", mounts=[bind])
    assert (code, out) == (0, "setting=1\n")


def test_a_tmpfs_has_its_size(client: httpx.Client) -> None:
    tmpfs = {"type": "tmpfs", "target": "/scratch", "size_bytes": 1 << 20}
    code, out = sh(
        client,
        "df -k /scratch | tail -1; dd if=/dev/zero of=/scratch/fill bs=1024 count=2048 2>&1",
        image="busybox",
        mounts=[tmpfs],
    )
    assert out.split()[1] == "1024"  # 1 KiB blocks
    assert "No space left on device" in out


@pytest.mark.parametrize(
    ("mount", "field", "message"),
    [
        ({"type": "tmpfs", "target": "relative"}, ["mounts", 0, "tmpfs", "target"], "absolute"),
        ({"type": "tmpfs", "target": "/a/../etc"}, ["mounts", 0, "tmpfs", "target"], "'..'"),
        ({"type": "tmpfs", "target": "/"}, ["mounts", 0, "tmpfs", "target"], "must not be /"),
        (
            {"type": "bind", "source": "rel", "target": "/d"},
            ["mounts", 0, "bind", "source"],
            "absolute",
        ),
        ({"type": "npipe", "target": "/d"}, ["mounts", 0], "tag"),
        (
            {"type": "volume", "target": "/d", "source": "a b"},
            ["mounts", 0, "volume", "source"],
            "pattern",
        ),
        (
            {"type": "tmpfs", "target": "/d", "source": "/x"},
            ["mounts", 0, "tmpfs", "source"],
            "Extra",
        ),
        (
            {"type": "tmpfs", "target": "/d", "size_bytes": 0},
            ["mounts", 0, "tmpfs", "size_bytes"],
            "greater",
        ),
    ],
)
def test_bad_mounts_are_422_naming_the_field(
    client: httpx.Client, mount: dict[str, object], field: list[object], message: str
) -> None:
    response = client.post(
        "/containers", json={"command": ["true"], "image": "busybox", "mounts": [mount]}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][1:] == field
    assert message in detail["msg"]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {
                "image": "busybox",
                "mounts": [{"type": "bind", "source": "/no/such/dir", "target": "/d"}],
            },
            ["body", "mounts", 0, "source"],
            "/no/such/dir does not exist",
        ),
        (
            {"image": "busybox", "mounts": [{"type": "tmpfs", "target": "/proc/sys"}]},
            ["body", "mounts", 0, "target"],
            "under /proc or /sys",
        ),
        (
            {"mounts": [{"type": "tmpfs", "target": "/usr/no-such-dir-on-the-host"}]},
            ["body", "mounts", 0, "target"],
            "does not exist in the host image's read-only /usr",
        ),
        (
            {"workdir": "/usr/no-such-dir-on-the-host"},
            ["body", "workdir"],
            "does not exist in the host image's read-only /usr",
        ),
    ],
)
def test_mounts_the_host_must_check_are_422_naming_the_field(
    client: httpx.Client, spec: dict[str, object], field: list[object], message: str
) -> None:
    response = client.post("/containers", json={"command": ["true"], **spec})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == field
    assert message in detail["msg"]


def test_the_state_dir_cannot_be_bound(client: httpx.Client, service: Service) -> None:
    bind = {"type": "bind", "source": str(service.state_dir / "mydocker.db"), "target": "/db"}
    response = client.post(
        "/containers", json={"command": ["true"], "image": "busybox", "mounts": [bind]}
    )
    assert response.status_code == 422
    assert "state dir" in response.json()["detail"][0]["msg"]


def test_a_bind_mount_in_a_user_namespace_with_an_image(
    client: httpx.Client, tmp_path: Path
) -> None:
    # Cloned while the child is still host root: the 0700 parents of tmp_path
    # do not stop it; inside, host-owned files show as nobody and read by mode.
    tmp_path.chmod(0o755)
    (tmp_path / "in").write_text("readable\n")
    bind = {"type": "bind", "source": str(tmp_path), "target": "/data", "read_only": True}
    code, out = sh(
        client, "cat /data/in; stat -c %u /data/in", image="busybox", userns=True, mounts=[bind]
    )
    assert (code, out) == (0, "readable\n65534\n")


def test_a_read_only_bind_is_read_only_all_the_way_down(
    client: httpx.Client, tmp_path: Path
) -> None:
    # A mount below the source comes along (the bind is recursive), and is
    # read-only too: mount_setattr(2) with AT_RECURSIVE on the clone.
    sub = tmp_path / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "mydocker-test-sub", str(sub)], check=True)
    try:
        (sub / "on-the-submount").write_text("here\n")
        bind = {"type": "bind", "source": str(tmp_path), "target": "/data", "read_only": True}
        code, out = sh(
            client,
            "cat /data/sub/on-the-submount; touch /data/sub/new",
            image="busybox",
            mounts=[bind],
        )
        assert out.startswith("here\n") and "Read-only file system" in out, out
        assert not (sub / "new").exists()
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


def test_one_source_can_be_bound_twice(client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("shared\n")
    mounts = [
        {"type": "bind", "source": str(tmp_path), "target": "/rw"},
        {"type": "bind", "source": str(tmp_path), "target": "/ro", "read_only": True},
        {"type": "bind", "source": "/dev/null", "target": "/etc/empty"},
    ]
    code, out = sh(
        client,
        "cat /ro/f; echo new > /rw/g; cat /ro/g; touch /ro/h; wc -c < /etc/empty",
        image="busybox",
        mounts=mounts,
    )
    assert out.startswith("shared\nnew\n0\n") and "Read-only file system" in out, out
    assert not (tmp_path / "h").exists()
