"""The archive handlers, native (app/routes/archive.py) and Docker's
(app/docker/archive.py), over the fake runtime."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from fastapi.testclient import TestClient

from app.docker.archive import go_file_mode
from runtime import InvalidState, NotFound
from runtime.archive import PathStat
from runtime.images.building import BuildRequest
from tests.fakes.runtime import FAKE_BUILT_ID, ID, FakeRuntime


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


def test_go_file_mode() -> None:
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755


def _stat_header(headers: dict[str, str]) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(
        base64.b64decode(headers["x-docker-container-path-stat"])
    )
    return decoded


def test_docker_head_and_get(client: TestClient, fake: FakeRuntime) -> None:
    head = client.head(f"/v1.47/containers/{ID}/archive", params={"path": "/etc/hosts"})
    assert head.status_code == 200
    assert _stat_header(dict(head.headers)) == {
        "name": "hosts",
        "size": 12,
        "mode": 0o644,
        "mtime": "2023-11-14T22:13:20.000000000Z",
        "linkTarget": "",
    }
    got = client.get(f"/v1.47/containers/{ID}/archive", params={"path": "/etc/hosts"})
    assert (got.status_code, got.content) == (200, b"tar")
    assert got.headers["content-type"] == "application/x-tar"
    assert fake.commands() == [
        ("archive_stat", (ID, "/etc/hosts"), {}),
        ("archive_read", (ID, "/etc/hosts"), {}),
    ]


def test_docker_put_passes_the_body_and_flags(client: TestClient, fake: FakeRuntime) -> None:
    got = client.put(
        f"/v1.47/containers/{ID}/archive",
        params={"path": "/tmp", "noOverwriteDirNonDir": "1", "copyUIDGID": "true"},
        content=b"tar body",
    )
    assert got.status_code == 200, got.text
    assert fake.extracted == b"tar body"
    ((_, args, _),) = fake.commands()
    assert (args[0], args[1], args[3], args[4]) == (ID, "/tmp", True, True)


def test_docker_errors(client: TestClient, fake: FakeRuntime) -> None:
    fake.errors["archive_stat"] = NotFound("path", "/nope in container x")
    head = client.head(f"/v1.47/containers/{ID}/archive", params={"path": "/nope"})
    assert head.status_code == 404
    fake.errors["archive_read"] = InvalidState("container x is not running")
    got = client.get(f"/v1.47/containers/{ID}/archive", params={"path": "/"})
    assert (got.status_code, got.json()["message"]) == (409, "container x is not running")
    missing = client.get(f"/v1.47/containers/{ID}/archive")
    assert missing.status_code == 400
    assert "path" in missing.json()["message"]


def test_native_stat_get_and_put(client: TestClient, fake: FakeRuntime) -> None:
    fake.path_stat = PathStat("l", 4, stat.S_IFLNK | 0o777, 0, "/etc")
    got = client.get(f"/containers/{ID}/archive/stat", params={"path": "/l"})
    assert got.json() == {
        "name": "l",
        "type": "symlink",
        "size": 4,
        "mode": "0777",
        "mtime": "1970-01-01T00:00:00Z",
        "link_target": "/etc",
    }
    tar = client.get(f"/containers/{ID}/archive", params={"path": "/l"})
    assert (tar.status_code, tar.content) == (200, b"tar")
    put = client.put(f"/containers/{ID}/archive", params={"path": "/tmp"}, content=b"t")
    assert (put.status_code, put.json()) == (200, {"written": 1})
    empty = client.get(f"/containers/{ID}/archive", params={"path": ""})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["query", "path"]


def test_changes_and_export(client: TestClient, fake: FakeRuntime) -> None:
    native = client.get(f"/containers/{ID}/changes")
    assert native.json() == [
        {"path": "/tmp", "kind": "modified"},
        {"path": "/tmp/f", "kind": "added"},
    ]
    docker = client.get(f"/v1.47/containers/{ID}/changes")
    assert docker.json() == [{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/f", "Kind": 1}]
    for url in (f"/containers/{ID}/export", f"/v1.47/containers/{ID}/export"):
        got = client.get(url)
        assert (got.status_code, got.content) == (200, b"tar")
    fake.errors["changes"] = InvalidState("container x runs the host image")
    assert client.get(f"/v1.47/containers/{ID}/changes").status_code == 409


def test_commit(client: TestClient, fake: FakeRuntime) -> None:
    native = client.post(f"/containers/{ID}/commit", params={"name": "snap"})
    assert (native.status_code, native.json()["name"]) == (201, "snap")
    docker = client.post("/v1.47/commit", params={"container": ID, "repo": "snap2", "pause": "0"})
    assert docker.status_code == 201, docker.text
    assert docker.json() == {"Id": FAKE_BUILT_ID}
    assert fake.commands() == [
        ("commit", (ID, "snap", True), {}),
        ("commit_image", (ID, BuildRequest(ref="snap2", pause=False)), {}),
    ]


def test_docker_commit_maps_every_option(client: TestClient, fake: FakeRuntime) -> None:
    """changes, comment, author, tag and a config body reach the runtime's request;
    no repo is an untagged image, as ``docker commit CONTAINER``."""
    untagged = client.post("/v1.47/commit", params={"container": ID})
    assert untagged.status_code == 201, untagged.text
    params = {
        "container": ID,
        "repo": "test/snap",
        "tag": "v1",
        "comment": "a note",
        "author": "me",
        "changes": ["EXPOSE 8000", 'CMD ["bash"]'],
    }
    full = client.post("/v1.47/commit", params=params, json={"Env": ["A=1"], "User": "nobody"})
    assert full.status_code == 201, full.text
    requests = [args[1] for name, args, _ in fake.commands() if name == "commit_image"]
    assert requests[0] == BuildRequest(ref=None)
    assert requests[1].ref == "test/snap:v1"
    assert requests[1].changes == ("EXPOSE 8000", 'CMD ["bash"]')
    assert (requests[1].comment, requests[1].author) == ("a note", "me")
    assert requests[1].config is not None
    assert (requests[1].config.env, requests[1].config.user) == (("A=1",), "nobody")


def test_docker_commit_refuses_a_tag_without_repo_and_a_bad_config(
    client: TestClient, fake: FakeRuntime
) -> None:
    no_repo = client.post("/v1.47/commit", params={"container": ID, "tag": "v1"})
    assert no_repo.status_code == 400
    assert "repo" in no_repo.json()["message"]
    bad = client.post("/v1.47/commit", params={"container": ID}, json={"Cmd": {"not": "argv"}})
    assert bad.status_code == 400
    assert "config" in bad.json()["message"]
    assert not [c for c in fake.commands() if c[0] == "commit_image"]
