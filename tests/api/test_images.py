"""/images and the root-filesystem fields of POST /containers, over a fake runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.errors import Conflict, Forbidden, InvalidArchive, NotFound, TooLarge
from runtime.images import Image
from runtime.images.pull import PullProgress
from runtime.images.registry import Credentials
from runtime.spec import Mount
from tests.fakes.runtime import FakeImport, FakeLoad, FakeRuntime

BUSYBOX = Image("busybox", True, "/state/images/busybox/rootfs", "2026-11-29T05:00:00Z", 2, 3)


@pytest.fixture
def fake() -> FakeRuntime:
    fake = FakeRuntime()
    host = Image("host", True, None, contents=("/usr (read-only)",), kind="builtin")
    fake.images = [host, BUSYBOX]
    return fake


def test_list_and_get(client: TestClient, fake: FakeRuntime) -> None:
    listed = client.get("/images").json()
    assert [i["name"] for i in listed] == ["host", "busybox"]
    assert listed[0] == {
        "name": "host", "builtin": True, "created_at": None, "size_bytes": None, "files": None,
        "contents": ["/usr (read-only)"], "kind": "builtin", "id": None, "tags": [],
        "digests": [], "layers": [], "config": None,
    }  # fmt: skip
    assert listed[1]["contents"] is None
    assert client.get("/images/docker.io/library/busybox:latest").json()["name"] == "busybox"
    assert fake.calls[-1] == ("get_image", ("docker.io/library/busybox:latest",), {})


def test_import_streams_the_body_into_the_job(client: TestClient, fake: FakeRuntime) -> None:
    def body() -> Iterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 1000

    response = client.post("/images", params={"name": "mybox"}, content=body())
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == 2000
    assert b"".join(fake.job.chunks) == b"a" * 1000 + b"b" * 1000
    assert fake.job.finished and not fake.job.aborted
    assert fake.calls == [("begin_import", ("mybox",), {})]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidArchive("'../x': '..' in a path name is not allowed"), 400),
        (TooLarge("the archive's contents exceed the cap of 10 bytes"), 413),
    ],
)
def test_import_errors_map_to_statuses(
    client: TestClient, fake: FakeRuntime, error: Exception, status: int
) -> None:
    fake.job = FakeImport(error)
    response = client.post("/images", params={"name": "mybox"}, content=b"x")
    assert response.status_code == status
    assert response.json() == {"detail": str(error)}


def test_import_needs_a_name(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/images", content=b"x").status_code == 422
    assert fake.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, 204),
        (NotFound("image", "nope"), 404),
        (Forbidden("busybox is a built-in image and cannot be deleted"), 403),
        (Conflict("image mybox is used by 1 container(s) (web); delete them first"), 409),
    ],
)
def test_delete_statuses(
    client: TestClient, fake: FakeRuntime, error: Exception | None, status: int
) -> None:
    fake.error = error
    assert client.delete("/images/mybox").status_code == status


def test_create_passes_image_read_only_and_mounts(client: TestClient, fake: FakeRuntime) -> None:
    body: dict[str, Any] = {
        "command": ["sh"],
        "image": "busybox",
        "read_only": True,
        "mounts": [
            {"type": "bind", "source": "/srv", "target": "/data", "read_only": True},
            {"type": "tmpfs", "target": "/scratch", "size_bytes": 4096},
        ],
    }
    assert client.post("/containers", json=body).status_code == 201
    op, (request,), _ = fake.calls[0]
    assert op == "begin_create"
    assert (request.image, request.read_only) == ("busybox", True)
    assert request.mounts == (
        Mount("bind", "/data", source="/srv", read_only=True),
        Mount("tmpfs", "/scratch", size_bytes=4096),
    )


def test_create_defaults_to_the_host_image(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/containers", json={"command": ["true"]}).status_code == 201
    _, (request,), _ = fake.calls[0]
    assert (request.image, request.read_only, request.mounts) == ("host", False, ())


def test_pull_answers_201_or_streams_ndjson_and_422s_a_bad_reference(
    client: TestClient, fake: FakeRuntime
) -> None:
    pulled = Image(
        "localhost:5000/app:1", False, None, kind="pulled", id="sha256:" + "a" * 64,
        tags=("localhost:5000/app:1",),
    )  # fmt: skip
    fake.images.append(pulled)
    body = {"reference": "localhost:5000/app:1", "auth": {"username": "u", "password": "p"}}
    got = client.post("/images/pull", json=body)
    assert got.status_code == 201 and got.json()["tags"] == ["localhost:5000/app:1"]
    assert ("pull_image", ("localhost:5000/app:1", Credentials("u", "p")), {}) in fake.calls
    fake.pull_steps = [PullProgress("abc", "Downloading", 1, 2)]
    lines = client.post("/images/pull?progress=true", json=body).text.splitlines()
    first = {"layer": "abc", "status": "Downloading", "current": 1, "total": 2}
    assert json.loads(lines[0]) == first
    assert json.loads(lines[-1])["image"]["id"] == "sha256:" + "a" * 64
    fake.pull_error = NotFound("image", "localhost:5000/app:nope")
    last = json.loads(client.post("/images/pull?progress=true", json=body).text.splitlines()[-1])
    assert last == {"error": "no such image: localhost:5000/app:nope", "status_code": 404}
    assert client.post("/images/pull", json=body).status_code == 404
    bad = client.post("/images/pull", json={"reference": "a b"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "reference"]
    assert client.post("/images/pull", json={}).status_code == 422


def test_tag_export_load_and_prune(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/images/busybox/tag", json={"tag": "x:1"}).status_code == 201
    assert client.get("/images/busybox/export").content == b"tar:busybox"
    assert client.get("/images/nope/export").status_code == 404
    fake.load_job = FakeLoad([BUSYBOX])
    loaded = client.post("/images/load", content=b"tarball")
    assert loaded.status_code == 200 and [i["name"] for i in loaded.json()] == ["busybox"]
    assert fake.load_job.chunks == [b"tarball"] and fake.load_job.finished
    assert client.post("/images/prune").json() == {"deleted": []}
    assert client.delete("/images/busybox?force=true").status_code == 204
    assert ("delete_image", ("busybox", True), {}) in fake.calls
