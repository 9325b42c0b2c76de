"""/images over HTTP: built-ins, import (good and hostile tarballs), delete, in-use."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import unique


def busybox_rootfs(service: Service) -> Path:
    return service.state_dir / "images" / "busybox" / "rootfs"


def tarball_of(rootfs: Path, gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        tar.add(rootfs, arcname=".")
    return buffer.getvalue()


def hostile(*members: tuple[str, bytes, str]) -> bytes:
    """A tar of (name, type, linkname) members, each with a little data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            data = b"evil\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def leftovers(service: Service) -> list[str]:
    return [e for e in os.listdir(service.state_dir / "images") if e.startswith(".import-")]


def test_builtin_images_are_listed(client: httpx.Client) -> None:
    images = {i["name"]: i for i in client.get("/images").json()}
    assert list(images)[0] == "host"
    assert images["host"]["builtin"] and images["host"]["size_bytes"] is None
    assert images["busybox"]["builtin"] and images["busybox"]["files"] > 200
    got = client.get("/images/docker.io/library/busybox:latest")
    assert got.status_code == 200 and got.json()["name"] == "busybox"


def test_unknown_image_is_404_with_its_name(client: httpx.Client) -> None:
    assert client.get("/images/nope").json() == {"detail": "no such image: nope"}
    response = client.post("/containers", json={"command": ["true"], "image": "nope"})
    assert response.status_code == 404
    assert response.json()["detail"] == "no such image: nope"


def test_builtins_cannot_be_deleted(client: httpx.Client) -> None:
    for name in ("host", "busybox"):
        response = client.delete(f"/images/{name}")
        assert response.status_code == 403
        assert "built-in" in response.json()["detail"]


def test_busybox_runs_in_its_own_root(client: httpx.Client) -> None:
    container = run(
        client, ["sh", "-c", "echo ok; ls /; ls /usr/lib/python3* 2>&1"], image="busybox"
    )
    assert container["exit_code"] != 0 or "python" not in logs(client, str(container["id"]))
    out = logs(client, str(container["id"]))
    assert out.startswith("ok\n")
    assert "bin\n" in out and "work\n" not in out  # the host's /work is not there
    assert "No such file or directory" in out


def test_an_imported_tarball_runs_and_deletes_once_unused(
    client: httpx.Client, service: Service
) -> None:
    name = unique("mybox")
    body = tarball_of(busybox_rootfs(service))
    response = client.post("/images", params={"name": name}, content=body)
    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["name"], image["builtin"]) == (name, False)
    assert image["size_bytes"] > 1_000_000
    again = client.post("/images", params={"name": name}, content=body)
    assert again.status_code == 409

    container = run(client, ["/bin/sh", "-c", "echo ok"], image=name)
    assert (container["exit_code"], container["image"]) == (0, name)
    assert logs(client, str(container["id"])) == "ok\n"

    # In use, even by an exited container: 409 naming it; after its delete: gone.
    busy = client.delete(f"/images/{name}")
    assert busy.status_code == 409 and container["id"] in busy.json()["detail"]
    assert client.delete(f"/containers/{container['id']}").status_code == 204
    assert client.delete(f"/images/{name}").status_code == 204
    assert client.get(f"/images/{name}").status_code == 404
    assert not (service.state_dir / "images" / name).exists()


def test_an_uncompressed_tarball_imports_too(client: httpx.Client, service: Service) -> None:
    name = unique("plain")
    body = tarball_of(busybox_rootfs(service), gz=False)
    assert client.post("/images", params={"name": name}, content=body).status_code == 201
    assert client.delete(f"/images/{name}").status_code == 204


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (hostile(("../x", tarfile.REGTYPE, "")), "'..' in a path name"),
        (hostile(("/etc/x", tarfile.REGTYPE, "")), "absolute path names"),
        (hostile(("up", tarfile.SYMTYPE, "../../../../etc")), "points out of the image"),
        (
            hostile(("link", tarfile.SYMTYPE, "/tmp"), ("link/planted", tarfile.REGTYPE, "")),
            "never written through one",
        ),
        (hostile(("hard", tarfile.LNKTYPE, "../../etc/passwd")), "hard link target"),
        (hostile(("dev/sda", tarfile.BLKTYPE, "")), "device nodes are not allowed"),
        (hostile(("dev/mem", tarfile.CHRTYPE, "")), "device nodes are not allowed"),
        (b"definitely not a tarball" * 100, "not a tar"),
    ],
)
def test_hostile_tarballs_are_400_with_the_reason_and_leave_nothing(
    client: httpx.Client, service: Service, body: bytes, reason: str
) -> None:
    name = unique("hostile")
    response = client.post("/images", params={"name": name}, content=body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert client.get(f"/images/{name}").status_code == 404
    assert leftovers(service) == []
    assert not os.path.exists("/tmp/planted") and not os.path.exists("/x")


def test_a_bad_image_name_is_422(client: httpx.Client) -> None:
    response = client.post("/images", params={"name": "Bad/Name"}, content=b"")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "name"]


def test_oversize_archives_are_413(own_service: Service) -> None:
    own_service.extra_args = ["--max-upload", "200000"]
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        # Small on the wire, big unpacked: the cap on the contents stops it.
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("zeros")
            info.size = 1 << 20
            tar.addfile(info, io.BytesIO(bytes(info.size)))
        bomb = client.post("/images", params={"name": "bomb"}, content=buffer.getvalue())
        assert bomb.status_code == 413
        assert "exceed the cap of 200000 bytes" in bomb.json()["detail"]
        # Big on the wire: refused while it streams in.
        big = client.post("/images", params={"name": "big"}, content=os.urandom(300_000))
        assert big.status_code == 413
        assert [i["name"] for i in client.get("/images").json()] == ["host", "busybox"]
    assert leftovers(own_service) == []
