"""``/volumes`` native and Docker's, over a real ``VolumeStore`` in a tmp
dir whose users are the fake's records: shapes, status codes, filters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.spec import Mount
from runtime.volumes import VolumeStore
from tests.fakes.runtime import FakeRuntime


@pytest.fixture
def fake(tmp_path: Path) -> FakeRuntime:
    fake = FakeRuntime()
    fake.volumes = VolumeStore(str(tmp_path / "volumes"), lambda: [fake.record, *fake.others])
    return fake


def use(fake: FakeRuntime, name: str) -> None:
    mount = Mount("volume", "/data", source=f"/x/{name}/_data", volume=name)
    spec = dataclasses.replace(fake.record.spec, mounts=(mount,))
    fake.record = dataclasses.replace(fake.record, spec=spec)


def test_native_create_get_list_delete(client: TestClient, fake: FakeRuntime) -> None:
    made = client.post("/volumes", json={"name": "data", "labels": {"a": "1"}})
    assert made.status_code == 201
    body = made.json()
    assert (body["name"], body["labels"], body["anonymous"]) == ("data", {"a": "1"}, False)
    assert Path(body["mountpoint"]).is_dir()
    assert client.post("/volumes", json={"name": "data"}).status_code == 200
    anonymous = client.post("/volumes", json={}).json()
    assert anonymous["anonymous"] and len(anonymous["name"]) == 64
    assert [v["name"] for v in client.get("/volumes", params={"label": "a=1"}).json()] == ["data"]
    assert client.get("/volumes/data").json()["containers"] == []
    assert client.delete("/volumes/data").status_code == 204
    assert client.get("/volumes/data").status_code == 404
    assert client.delete("/volumes/data").status_code == 404


@pytest.mark.parametrize("name", ["-x", "a", "a/b", "a b", "x" * 249])
def test_bad_names_are_422_naming_the_field(client: TestClient, name: str) -> None:
    got = client.post("/volumes", json={"name": name})
    assert got.status_code == 422 and got.json()["detail"][0]["loc"] == ["body", "name"]


def test_a_volume_in_use_is_409_and_not_pruned(client: TestClient, fake: FakeRuntime) -> None:
    client.post("/volumes", json={"name": "busy"})
    use(fake, "busy")
    got = client.delete("/volumes/busy")
    assert got.status_code == 409 and fake.record.name in got.json()["detail"]
    assert client.get("/volumes/busy").json()["containers"] == [fake.record.id]
    assert client.post("/volumes/prune", params={"all": "true"}).json()["removed"] == []
    docker = client.delete("/v1.47/volumes/busy", params={"force": "1"})
    assert docker.status_code == 409 and "in use" in docker.json()["message"]


def test_prune_takes_anonymous_ones_unless_all(client: TestClient, fake: FakeRuntime) -> None:
    client.post("/volumes", json={"name": "named"})
    anonymous = client.post("/volumes", json={}).json()["name"]
    assert client.post("/volumes/prune").json() == {
        "removed": [anonymous],
        "space_reclaimed_bytes": 0,
    }
    assert client.post("/volumes/prune", params={"label": "x"}).json()["removed"] == []
    assert client.post("/volumes/prune", params={"all": "true"}).json()["removed"] == ["named"]


def test_docker_volume_routes(client: TestClient, fake: FakeRuntime) -> None:
    made = client.post("/v1.47/volumes/create", json={"Name": "dv", "Labels": {"k": "v"}})
    assert made.status_code == 201
    assert {k: made.json()[k] for k in ("Name", "Driver", "Labels", "Scope")} == {
        "Name": "dv",
        "Driver": "local",
        "Labels": {"k": "v"},
        "Scope": "local",
    }
    listed = client.get("/v1.47/volumes", params={"filters": '{"label":["k=v"]}'}).json()
    assert [v["Name"] for v in listed["Volumes"]] == ["dv"] and listed["Warnings"] == []
    dangling = client.get("/v1.47/volumes", params={"filters": '{"dangling":["false"]}'}).json()
    assert dangling["Volumes"] == []
    assert client.get("/v1.47/volumes/dv").json()["Mountpoint"].endswith("/dv/_data")
    missing = client.get("/v1.47/volumes/nope")
    assert missing.status_code == 404 and "no such volume" in missing.json()["message"]
    assert client.delete("/v1.47/volumes/nope", params={"force": "1"}).status_code == 204
    assert client.delete("/v1.47/volumes/nope").status_code == 404
    pruned = client.post("/v1.47/volumes/prune", params={"filters": '{"all":["true"]}'}).json()
    assert pruned == {"VolumesDeleted": ["dv"], "SpaceReclaimed": 0}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Name": "a/b"}, "Name"),
        ({"Name": "v", "DriverOpts": {"type": "nfs"}}, "DriverOpts"),
    ],
)
def test_docker_create_refusals(client: TestClient, body: dict[str, object], named: str) -> None:
    got = client.post("/v1.47/volumes/create", json=body)
    assert got.status_code == 400 and named in got.json()["message"]


def test_docker_unknown_driver_is_404_naming_it(client: TestClient) -> None:
    """Docker answers a driver it has no plugin for with 404 (docker-py's
    NotFound), naming the driver; no volume is made."""
    got = client.post("/v1.47/volumes/create", json={"Name": "v", "Driver": "nfs"})
    assert got.status_code == 404 and "volume plugin: nfs" in got.json()["message"]
    assert client.get("/v1.47/volumes/v").status_code == 404


def test_docker_bad_filters_are_400(client: TestClient) -> None:
    got = client.get("/v1.47/volumes", params={"filters": '{"color":["red"]}'})
    assert got.status_code == 400
    got = client.post("/v1.47/volumes/prune", params={"filters": '{"until":["1h"]}'})
    assert got.status_code == 400


def test_the_longest_name_fits_and_a_longer_one_is_not_found(client: TestClient) -> None:
    longest = "x" * 248
    assert client.post("/volumes", json={"name": longest}).status_code == 201
    assert client.delete(f"/volumes/{longest}").status_code == 204
    assert client.get(f"/volumes/{'x' * 300}").status_code == 404
    assert client.get(f"/v1.47/volumes/{'x' * 300}").status_code == 404


def test_docker_create_maps_volumes_restart_and_init(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "Image": "host",
        "Cmd": ["true"],
        "Volumes": {"/bound": {}, "/anon": {}},
        "HostConfig": {
            "Binds": ["/srv:/bound", "named:/named:ro"],
            "Mounts": [{"Type": "volume", "Target": "/m"}],
            "VolumesFrom": ["other:ro"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "Init": True,
        },
    }
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [(_, (request,), _)] = fake.commands()
    assert [(m.type, m.volume, m.target, m.read_only) for m in request.mounts] == [
        ("bind", None, "/bound", False),
        ("volume", "named", "/named", True),
        ("volume", None, "/m", False),
        ("volume", None, "/anon", False),
    ]
    assert request.volumes_from == ("other:ro",)
    assert (request.restart_policy.name, request.restart_policy.maximum_retry_count) == (
        "on-failure",
        2,
    )
    assert request.init is True


def test_native_create_maps_volumes_restart_and_init(client: TestClient, fake: FakeRuntime) -> None:
    body = {
        "command": ["true"],
        "mounts": [{"type": "volume", "source": "data", "target": "/d"}],
        "volumes_from": ["web"],
        "restart_policy": {"name": "always"},
        "init": True,
    }
    assert client.post("/containers", json=body).status_code == 201
    [(_, (request,), _)] = fake.commands()
    assert [(m.type, m.volume, m.target) for m in request.mounts] == [("volume", "data", "/d")]
    assert (request.volumes_from, request.restart_policy.name, request.init) == (
        ("web",),
        "always",
        True,
    )
    bad = client.post("/containers", json={**body, "volumes_from": ["web:z"]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "volumes_from"]
