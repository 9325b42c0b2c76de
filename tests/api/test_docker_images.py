"""app/docker/images.py's branches: import requests, list and prune filters, a
refused load as a stream line, every verb through one resolver (ids and short ids)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from runtime.errors import InvalidArchive, InvalidArgument
from runtime.images import Image
from runtime.images.building import BuildRequest
from runtime.images.oci import ImageConfig
from runtime.imaging import Removal
from tests.fakes.runtime import FakeLoad, FakeRuntime

BUILT_ID = "sha256:" + "9f" * 32
BUILT = Image(
    "test/built:v1",
    False,
    None,
    kind="pulled",
    id=BUILT_ID,
    tags=("test/built:v1",),
    config=ImageConfig(labels={"tier": "web"}, comment="a note", author="me", parent="sha256:p"),
)
UNTAGGED = Image("9e9e9e9e9e9e", False, None, kind="pulled", id="sha256:" + "9e" * 32)


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime()


def test_import_takes_a_slash_name_changes_and_a_message(
    client: TestClient, fake: FakeRuntime
) -> None:
    got = client.post(
        "/v1.47/images/create",
        params={
            "fromSrc": "-",
            "repo": "test/import",
            "tag": "v2",
            "changes": ["USER foobar", 'CMD ["echo"]'],
            "message": "hi",
        },
        content=b"tar bytes",
    )
    assert got.status_code == 200, got.text
    wanted = BuildRequest(
        ref="test/import:v2", changes=("USER foobar", 'CMD ["echo"]'), comment="hi"
    )
    assert ("begin_image_import", (wanted,), {}) in fake.calls
    assert fake.job.chunks and fake.job.finished
    untagged = client.post("/v1.47/images/create", params={"fromSrc": "-"}, content=b"x")
    assert untagged.status_code == 200
    assert ("begin_image_import", (BuildRequest(),), {}) in fake.calls


def test_an_import_refused_before_the_body_names_the_field(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.errors["begin_image_import"] = InvalidArgument("changes", "'RUN x': RUN is not valid")
    got = client.post(
        "/v1.47/images/create", params={"fromSrc": "-", "changes": "RUN x"}, content=b"x"
    )
    assert got.status_code == 400
    assert got.json()["message"].startswith("changes:")
    url = client.post("/v1.47/images/create", params={"fromSrc": "http://x/y.tar"})
    assert url.status_code == 501


def test_inspect_and_history_show_comment_author_parent(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.images.append(BUILT)
    got = client.get(f"/v1.47/images/{BUILT_ID}/json").json()
    assert (got["Comment"], got["Author"], got["Parent"]) == ("a note", "me", "sha256:p")
    history = client.get("/v1.47/images/test/built:v1/history").json()
    assert history[0]["Comment"] == "a note"


def test_list_filters(client: TestClient, fake: FakeRuntime) -> None:
    fake.images += [BUILT, UNTAGGED]

    def ids(**params: str) -> list[str]:
        got = client.get("/v1.47/images/json", params=params)
        assert got.status_code == 200, got.text
        return [i["Id"] for i in got.json()]

    assert ids(filters=json.dumps({"reference": ["test/built"]})) == [BUILT_ID]
    assert ids(filters=json.dumps({"reference": ["test/*:v1"]})) == [BUILT_ID]
    assert ids(filters=json.dumps({"reference": ["test/built:v2"]})) == []
    assert ids(filter="test/built") == [BUILT_ID]  # the old API's parameter
    assert ids(filters=json.dumps({"label": ["tier=web"]})) == [BUILT_ID]
    assert ids(filters=json.dumps({"label": ["tier=db"]})) == []
    assert ids(filters=json.dumps({"dangling": ["true"]})) == [UNTAGGED.id]
    assert UNTAGGED.id not in ids(filters=json.dumps({"dangling": ["false"]}))
    for bad in ({"dangling": ["maybe"]}, {"colour": ["red"]}):
        refused = client.get("/v1.47/images/json", params={"filters": json.dumps(bad)})
        assert refused.status_code == 400


def test_prune_filters_and_space(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post("/v1.47/images/prune").json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    assert ("prune_images", (), {"dangling_only": True}) in fake.calls
    fake.answers["prune_images"] = [
        Removal("Untagged", "a:latest"),
        Removal("Deleted", BUILT_ID, 7),
    ]
    every = client.post("/v1.47/images/prune", params={"filters": '{"dangling": ["false"]}'})
    assert every.json() == {
        "ImagesDeleted": [{"Untagged": "a:latest"}, {"Deleted": BUILT_ID}],
        "SpaceReclaimed": 7,
    }
    assert ("prune_images", (), {"dangling_only": False}) in fake.calls
    for bad in ('{"until": ["1h"]}', '{"dangling": ["x"]}'):
        assert client.post("/v1.47/images/prune", params={"filters": bad}).status_code == 400


def test_a_refused_load_is_a_200_with_an_error_line(client: TestClient, fake: FakeRuntime) -> None:
    fake.load_job = FakeLoad([], InvalidArchive("not a tar archive"))
    got = client.post("/v1.47/images/load", content=b"abc")
    assert got.status_code == 200
    line = json.loads(got.text)
    assert line == {"errorDetail": {"message": "not a tar archive"}, "error": "not a tar archive"}
    fake.load_job = FakeLoad([], InvalidArchive("not a tar archive"))
    assert client.post("/images/load", content=b"abc").status_code == 400  # native: its status


def test_load_lists_tags_or_the_id(client: TestClient, fake: FakeRuntime) -> None:
    fake.load_job = FakeLoad([BUILT, UNTAGGED])
    got = client.post("/v1.47/images/load", content=b"tar")
    streams = [json.loads(line)["stream"] for line in got.text.splitlines()]
    assert streams == ["Loaded image: test/built:v1\n", f"Loaded image ID: {UNTAGGED.id}\n"]


def test_save_tag_and_delete_resolve_ids_and_short_ids(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.images.append(BUILT)
    short = BUILT_ID.removeprefix("sha256:")[:12]
    assert client.get(f"/v1.47/images/{short}/get").status_code == 200
    assert ("save_images", ([BUILT_ID],), {}) in fake.calls
    assert client.get("/v1.47/images/test/built:v1/get").status_code == 200
    assert ("save_images", (["test/built:v1"],), {}) in fake.calls  # a name stays a name
    assert client.post(f"/v1.47/images/{short}/tag", params={"repo": "x"}).status_code == 201
    assert ("tag_image", (BUILT_ID, "x:latest"), {}) in fake.calls
    fake.answers["delete_image"] = [Removal("Deleted", BUILT_ID)]
    assert client.delete(f"/v1.47/images/{short}").json() == [{"Deleted": BUILT_ID}]
    assert ("delete_image", (BUILT_ID, False), {}) in fake.calls
    assert client.get("/v1.47/images/0123456789ab/get").status_code == 404
