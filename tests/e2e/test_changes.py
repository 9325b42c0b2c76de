"""A container's changes and its exported root over the native API, with
real containers (runtime/changes.py)."""

from __future__ import annotations

import io
import tarfile
import time

import httpx

from tests.e2e.conftest import logs, run
from tests.e2e.helpers import create, unique, wait

IMAGE = "busybox"
SCRIPT = (
    "echo new > /tmp/new; echo changed >> /etc/passwd; rm /etc/group; "
    "mkdir -p /opt/made/deep; echo x > /opt/made/deep/f; rm -rf /home; mkdir /home; "
    "touch /home/only"
)


def _changes(client: httpx.Client, ref: str) -> dict[str, str]:
    got = client.get(f"/containers/{ref}/changes")
    assert got.status_code == 200, got.text
    return {c["path"]: c["kind"] for c in got.json()}


def test_changes_of_a_stopped_container(client: httpx.Client) -> None:
    container = create(client, ["sh", "-c", SCRIPT], image=IMAGE)
    assert wait(client, container["id"])["exit_code"] == 0
    changes = _changes(client, container["id"])
    assert changes["/tmp/new"] == "added"
    assert changes["/tmp"] == "modified"
    assert changes["/etc/passwd"] == "modified"
    assert changes["/etc/group"] == "deleted"
    assert changes["/opt/made/deep/f"] == "added"
    assert changes["/home/only"] == "added"
    # The runtime's mount points are not the container's changes.
    assert not [p for p in changes if p.startswith(("/proc", "/sys", "/dev"))]
    client.delete(f"/containers/{container['id']}")


def test_export_is_the_merged_root(client: httpx.Client) -> None:
    container = create(client, ["sh", "-c", SCRIPT], image=IMAGE)
    wait(client, container["id"])
    got = client.get(f"/containers/{container['id']}/export")
    assert (got.status_code, got.headers["content-type"]) == (200, "application/x-tar")
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().endswith(b"changed\n")
        assert tar.getmember("bin/sh").isfile() or tar.getmember("bin/sh").issym()
    assert {"tmp/new", "opt/made/deep/f", "home/only"} <= names
    assert "etc/group" not in names  # deleted in the layer
    assert not [n for n in names if n.startswith("proc/")]
    client.delete(f"/containers/{container['id']}")


def test_a_fresh_container_has_no_changes(client: httpx.Client) -> None:
    container = create(client, ["true"], image=IMAGE)
    wait(client, container["id"])
    assert _changes(client, container["id"]) == {}
    client.delete(f"/containers/{container['id']}")


def test_the_host_image_and_unknown_containers_are_refused(client: httpx.Client) -> None:
    container = create(client, ["true"], image="host")
    wait(client, container["id"])
    for verb in ("changes", "export"):
        got = client.get(f"/containers/{container['id']}/{verb}")
        assert got.status_code == 409
        assert "host image" in got.json()["detail"]
        assert client.get(f"/containers/no-such/{verb}").status_code == 404
    client.delete(f"/containers/{container['id']}")


def test_commit_makes_an_image_of_the_root(client: httpx.Client) -> None:
    container = create(client, ["sh", "-c", "echo kept > /kept; exec sleep 300"], image=IMAGE)
    name = unique("committed")
    for _ in range(200):
        if "/kept" in _changes(client, container["id"]):
            break
        time.sleep(0.02)
    got = client.post(f"/containers/{container['id']}/commit", params={"name": name})
    assert got.status_code == 201, got.text
    assert got.json()["name"] == name
    # Paused meanwhile, running again after.
    after = client.get(f"/containers/{container['id']}").json()
    assert (after["status"], after["paused"]) == ("running", False)
    child = run(client, ["cat", "/kept"], image=name)
    assert child["exit_code"] == 0
    assert logs(client, child["id"]) == "kept\n"
    taken = client.post(f"/containers/{container['id']}/commit", params={"name": name})
    assert taken.status_code == 409
    client.delete(f"/containers/{child['id']}")
    client.delete(f"/containers/{container['id']}", params={"force": "true"})
    assert client.delete(f"/images/{name}").status_code == 204
