"""Files into and out of running containers over the native API
(runtime/archive.py, app/routes/archive.py), and every way out refused."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import create, unique, wait, wait_for_output

IMAGE = "busybox"
SETUP = (
    "ln -s /etc /tmp/etclink; ln -s / /tmp/rootlink; ln -s /data/sub/f /tmp/flink; "
    "mkdir -p /data/sub; echo inside > /data/sub/f; echo up; exec sleep 300"
)


@pytest.fixture
def box(client: httpx.Client) -> Iterator[dict[str, Any]]:
    container = create(client, ["sh", "-c", SETUP], image=IMAGE, name=unique("cp"))
    wait_for_output(client, container["id"], "up")
    yield container
    client.delete(f"/containers/{container['id']}", params={"force": "true"})


def _tar(*members: tuple[str, bytes | str | None]) -> bytes:
    """Members as (name, content): bytes for a file, "->target" for a
    symlink, None for a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("->")
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o640
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(client: httpx.Client, cid: str, path: str) -> bytes:
    got = client.get(f"/containers/{cid}/archive", params={"path": path})
    assert got.status_code == 200, got.text
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        member = tar.next()
        assert member is not None
        f = tar.extractfile(member)
        assert f is not None
        return f.read()


def _exec_out(client: httpx.Client, cid: str, command: list[str]) -> str:
    got = client.post(f"/containers/{cid}/exec", params={"wait": "true"}, json={"command": command})
    assert got.status_code == 201, got.text
    out = client.get(f"/execs/{got.json()['id']}/logs")
    return str(out.text)


def test_get_a_directory_and_a_file(client: httpx.Client, box: dict[str, Any]) -> None:
    got = client.get(f"/containers/{box['id']}/archive", params={"path": "/data"})
    assert (got.status_code, got.headers["content-type"]) == (200, "application/x-tar")
    members = _members(got.content)
    assert sorted(members) == ["data", "data/sub", "data/sub/f"]
    assert members["data"].isdir() and members["data/sub/f"].size == 7
    assert _read(client, box["id"], "/data/sub/f") == b"inside\n"
    stat = client.get(f"/containers/{box['id']}/archive/stat", params={"path": "/data"})
    assert (stat.json()["name"], stat.json()["type"]) == ("data", "directory")


def test_get_resolves_inside_the_container_never_the_host(
    client: httpx.Client, box: dict[str, Any]
) -> None:
    assert not os.path.exists("/data/sub/f")  # only the container has it
    assert _read(client, box["id"], "/../../../../data/sub/f") == b"inside\n"
    # A link to an absolute path is resolved in the container's root.
    assert _read(client, box["id"], "/tmp/rootlink/data/sub/f") == b"inside\n"
    assert _read(client, box["id"], "/tmp/rootlink/../../data/sub/f") == b"inside\n"
    passwd = _read(client, box["id"], "/tmp/etclink/passwd")
    assert passwd == _exec_out(client, box["id"], ["cat", "/etc/passwd"]).encode()
    # The last component, a link, is archived as the link itself.
    members = _members(
        client.get(f"/containers/{box['id']}/archive", params={"path": "/tmp/flink"}).content
    )
    assert members["flink"].issym() and members["flink"].linkname == "/data/sub/f"
    stat = client.get(f"/containers/{box['id']}/archive/stat", params={"path": "/tmp/flink"})
    assert (stat.json()["type"], stat.json()["link_target"]) == ("symlink", "/data/sub/f")
    # /proc is the kernel's: an empty directory in an archive of /.
    whole = _members(client.get(f"/containers/{box['id']}/archive", params={"path": "/"}).content)
    assert whole["./proc"].isdir() and whole["./data/sub/f"].isfile()
    assert not [name for name in whole if "/proc/" in name or "/sys/" in name]


def test_get_of_nothing_is_a_404(client: httpx.Client, box: dict[str, Any]) -> None:
    missing = client.get(f"/containers/{box['id']}/archive", params={"path": "/nope"})
    assert missing.status_code == 404
    assert "/nope" in missing.json()["detail"]
    assert client.get("/containers/no-such/archive", params={"path": "/"}).status_code == 404
    assert client.get(f"/containers/{box['id']}/archive").status_code == 422


def test_a_stopped_container_is_read_and_written_on_disk(client: httpx.Client) -> None:
    script = "mkdir /out; echo result > /out/r; ln -s /out /tmp/o; rm /etc/group"
    exited = create(client, ["sh", "-c", script], image=IMAGE)
    assert wait(client, exited["id"])["exit_code"] == 0
    assert _read(client, exited["id"], "/out/r") == b"result\n"
    assert _read(client, exited["id"], "/tmp/o/../../../out/r") == b"result\n"
    assert _read(client, exited["id"], "/etc/passwd").startswith(b"root:")
    whole = _members(
        client.get(f"/containers/{exited['id']}/archive", params={"path": "/out"}).content
    )
    assert sorted(whole) == ["out", "out/r"]
    gone = client.get(f"/containers/{exited['id']}/archive", params={"path": "/etc/group"})
    assert gone.status_code == 404
    stat = client.get(f"/containers/{exited['id']}/archive/stat", params={"path": "/tmp/o"})
    assert (stat.json()["type"], stat.json()["link_target"]) == ("symlink", "/out")
    # Written to its files on disk, as Docker copies into a stopped container:
    # into its writable layer, a deleted file's whiteout replaced.
    put = client.put(
        f"/containers/{exited['id']}/archive",
        params={"path": "/etc"},
        content=_tar(("group", b"again\n"), ("new", None), ("new/f", b"f\n")),
    )
    assert put.status_code == 200, put.text
    assert put.json()["written"] == 3
    assert _read(client, exited["id"], "/etc/group") == b"again\n"
    assert _read(client, exited["id"], "/etc/new/f") == b"f\n"
    assert _read(client, exited["id"], "/etc/passwd").startswith(b"root:")  # the image's still
    client.delete(f"/containers/{exited['id']}")


def test_put_unpacks_into_the_container(client: httpx.Client, box: dict[str, Any]) -> None:
    body = _tar(("new", None), ("new/a.txt", b"hello\n"), ("new/link", "->a.txt"))
    got = client.put(f"/containers/{box['id']}/archive", params={"path": "/data"}, content=body)
    assert (got.status_code, got.json()) == (200, {"written": 3})
    out = _exec_out(
        client, box["id"], ["sh", "-c", "cat /data/new/link; stat -c '%a %u' /data/new/a.txt"]
    )
    assert out == "hello\n640 0\n"
    # Through a link in the destination path: the container's /etc, not the host's.
    name = unique("cpfile")
    body = _tar((name, b"x\n"))
    got = client.put(
        f"/containers/{box['id']}/archive", params={"path": "/tmp/etclink"}, content=body
    )
    assert got.status_code == 200, got.text
    assert not os.path.exists(f"/etc/{name}")
    assert _read(client, box["id"], f"/etc/{name}") == b"x\n"


@pytest.mark.parametrize(
    "members",
    [
        [("../../../../tmp/escape-dotdot", b"x")],
        [("esc", "->/"), ("esc/tmp/escape-link", b"x")],
        [("esc", "->../../../../.."), ("esc/tmp/escape-rel", b"x")],
    ],
    ids=["dotdot", "absolute-link", "relative-link"],
)
def test_put_refuses_members_that_lead_out(
    client: httpx.Client, box: dict[str, Any], members: list[tuple[str, bytes | str | None]]
) -> None:
    got = client.put(
        f"/containers/{box['id']}/archive", params={"path": "/data"}, content=_tar(*members)
    )
    assert got.status_code == 400, got.text
    assert "extraction point" in got.json()["detail"]
    target = members[-1][0].rsplit("/", 1)[-1]
    assert not os.path.exists(f"/tmp/{target}")
    listing = _exec_out(client, box["id"], ["sh", "-c", f"ls /tmp/{target} 2>&1 || true"])
    assert "No such file" in listing


def test_put_never_writes_through_an_existing_link(
    client: httpx.Client, box: dict[str, Any]
) -> None:
    # /tmp/flink -> /data/sub/f: a file member of that name replaces the link.
    body = _tar(("flink", b"replaced\n"))
    got = client.put(f"/containers/{box['id']}/archive", params={"path": "/tmp"}, content=body)
    assert got.status_code == 200, got.text
    assert _read(client, box["id"], "/data/sub/f") == b"inside\n"
    assert _read(client, box["id"], "/tmp/flink") == b"replaced\n"


def test_put_refusals(client: httpx.Client, box: dict[str, Any]) -> None:
    url = f"/containers/{box['id']}/archive"
    assert client.put(url, params={"path": "/nope"}, content=_tar(("a", b""))).status_code == 404
    not_dir = client.put(url, params={"path": "/data/sub/f"}, content=_tar(("a", b"")))
    assert not_dir.status_code == 422
    assert "not a directory" in str(not_dir.json()["detail"])
    garbage = client.put(url, params={"path": "/data"}, content=b"not a tar at all" * 100)
    assert garbage.status_code == 400
    assert "not a tar" in garbage.json()["detail"]
