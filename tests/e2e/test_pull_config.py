"""A pulled image's Volumes, StopSignal and ExposedPorts acted on, end to end.

The image (four layers, pushed to a real ``docker-registry`` with skopeo)
declares ``/data`` (made in its third layer, one file deleted and one added
in its fourth), ``/opaque`` (made opaque by its second layer) and ``/mine``
as volumes, SIGQUIT as its stop signal and a HEALTHCHECK.  The ``-P`` test loads the same
image into a service inside a network namespace of the test's own
(tests/e2e/netservice.py) and reaches the published port from that "host".
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.docker_helpers import run_docker
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.oci_registry import Layout, Registry, base_layer, tar_layer, top_layer
from tests.e2e.test_networks import host_side

pytestmark = pytest.mark.skipif(
    not (shutil.which("docker-registry") and shutil.which("skopeo")),
    reason="needs docker-registry and skopeo (scripts/setup installs them)",
)

#: Waits for SIGQUIT (its StopSignal); a SIGTERM would end it with 143, untrapped.
TRAP = "trap 'echo got QUIT; exit 3' QUIT; echo ready; while :; do busybox sleep 0.1; done"
CONFIG: dict[str, object] = {
    "Cmd": ["/bin/sh", "-c", TRAP],
    "Volumes": {"/data": {}, "/opaque": {}, "/mine": {}},
    "ExposedPorts": {"8080/tcp": {}},
    "StopSignal": "SIGQUIT",
    "Healthcheck": {"Test": ["CMD-SHELL", "busybox test -e /data/keep"], "Interval": 200_000_000},
}
NAME = "e2e/cfg:cfg"


def layout(path: Path) -> Layout:
    data = tar_layer(
        [("data", "dir", b""), ("data/keep", "file", "kept\n"), ("data/one", "file", "1")]
    )
    more = tar_layer(
        [("data", "dir", b""), ("data/.wh.one", "file", b""), ("data/two", "file", "2")]
    )
    oci = Layout(path)
    oci.tag(oci.image([base_layer(), top_layer(), data, more], config_fields=CONFIG), "cfg")
    return oci


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    oci = layout(tmp_path_factory.mktemp("oci") / "layout")
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        reg.push(oci.path, "cfg", "e2e/cfg")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def image(client: httpx.Client, registry: Registry) -> Iterator[str]:
    ref = f"{registry.host}/{NAME}"
    pulled = client.post("/images/pull", json={"reference": ref})
    assert pulled.status_code == 201, pulled.text
    yield ref
    for c in client.get("/containers", params={"all": "true"}).json():
        if c["image"] == ref:
            client.delete(f"/containers/{c['id']}", params={"force": "true", "volumes": "true"})
    client.delete(f"/images/{ref}", params={"force": "true"})


def anonymous(client: httpx.Client) -> set[str]:
    return {v["name"] for v in client.get("/volumes").json() if v["anonymous"]}


def test_image_volumes_are_anonymous_volumes_filled_from_the_merged_layers(
    client: httpx.Client, image: str
) -> None:
    before = anonymous(client)
    script = "busybox ls /data; busybox ls /opaque; echo new > /data/added; busybox ls /mine"
    done = run(
        client,
        ["/bin/sh", "-c", script],
        image=image,
        mounts=[{"type": "tmpfs", "target": "/mine"}],
    )
    assert done["exit_code"] == 0, done
    # /data: layer 3's files less layer 4's whiteout, plus layer 4's; /opaque: the top's only
    assert logs(client, done["id"]) == "keep\ntwo\nnew\n"
    made = anonymous(client) - before
    assert len(made) == 2  # /data and /opaque; the request's tmpfs took /mine
    targets = {m["target"]: m for m in client.get(f"/containers/{done['id']}").json()["mounts"]}
    assert {targets[t]["volume"] for t in ("/data", "/opaque")} == made
    assert targets["/mine"]["type"] == "tmpfs"
    [data] = [v for v in made if v == targets["/data"]["volume"]]
    assert sorted(
        p.name for p in Path(client.get(f"/volumes/{data}").json()["mountpoint"]).iterdir()
    ) == [
        "added",
        "keep",
        "two",
    ]
    response = client.delete(f"/containers/{done['id']}", params={"volumes": "true"})
    assert response.status_code == 204
    assert anonymous(client) & made == set()


def test_stop_sends_the_images_stop_signal_unless_the_create_names_one(
    client: httpx.Client, image: str
) -> None:
    created = client.post("/containers", json={"image": image})
    assert created.status_code == 201, created.text
    ref = created.json()["id"]
    wait_for_log(client, ref, "ready\n")
    stopped = client.post(f"/containers/{ref}/stop", params={"timeout": 20}).json()
    assert stopped["exit_code"] == 3, stopped
    assert logs(client, ref) == "ready\ngot QUIT\n"
    shown = client.get(f"/v1.47/containers/{ref}/json").json()["Config"]["StopSignal"]
    assert shown == "SIGQUIT"
    mine = client.post("/containers", json={"image": image, "options": {"stop_signal": "SIGKILL"}})
    assert mine.status_code == 201, mine.text
    wait_for_log(client, mine.json()["id"], "ready\n")
    stopped = client.post(f"/containers/{mine.json()['id']}/stop").json()
    assert stopped["exit_code"] == 137 and logs(client, stopped["id"]) == "ready\n"


def test_the_images_healthcheck_runs_unless_the_create_refuses_it(
    client: httpx.Client, image: str
) -> None:
    def health(ref: str) -> Any:
        return client.get(f"/v1.47/containers/{ref}/json").json()["State"].get("Health")

    checked = client.post("/v1.47/containers/create", json={"Image": image}).json()["Id"]
    refused = client.post(
        "/v1.47/containers/create", json={"Image": image, "Healthcheck": {"Test": ["NONE"]}}
    ).json()["Id"]
    for ref in (checked, refused):
        assert client.post(f"/v1.47/containers/{ref}/start").status_code == 204
    deadline = time.monotonic() + 20
    while (health(checked) or {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, health(checked)
        time.sleep(0.1)
    shown = client.get(f"/v1.47/containers/{checked}/json").json()["Config"]["Healthcheck"]
    assert shown["Test"] == ["CMD", "/bin/sh", "-c", "busybox test -e /data/keep"]
    assert health(refused) is None


def wait_for_log(client: httpx.Client, ref: str, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while logs(client, ref) != text:
        assert time.monotonic() < deadline, logs(client, ref)
        time.sleep(0.05)


def test_the_docker_cli_stops_with_the_images_signal_and_rm_v_removes_its_volumes(
    client: httpx.Client, service: Service, image: str, tmp_path: Path
) -> None:
    before = anonymous(client)
    started = run_docker(service, tmp_path, "run", "-d", image)
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    wait_for_log(client, cid, "ready\n")
    assert len(anonymous(client) - before) == 3
    assert run_docker(service, tmp_path, "stop", cid).returncode == 0
    shown = json.loads(run_docker(service, tmp_path, "inspect", cid).stdout)[0]
    assert (shown["State"]["ExitCode"], shown["Config"]["StopSignal"]) == (3, "SIGQUIT")
    assert {m["Destination"] for m in shown["Mounts"]} == {"/data", "/opaque", "/mine"}
    assert run_docker(service, tmp_path, "rm", "-v", cid).returncode == 0
    assert anonymous(client) == before


def oci_tar(path: Path, name: str) -> bytes:
    """The test image as an OCI layout tarball whose index names it ``name``."""
    oci = layout(path)
    index = json.loads((oci.path / "index.json").read_text())
    index["manifests"][0]["annotations"]["io.containerd.image.name"] = name
    (oci.path / "index.json").write_text(json.dumps(index))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for item in sorted(oci.path.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(oci.path)), recursive=False)
    return buf.getvalue()


def test_publish_all_ports_publishes_the_images_exposed_ports(
    net_service: NetService, netns: Namespace, tmp_path: Path
) -> None:
    name = "localhost/e2e/cfg:ports"
    with net_service.client() as api:
        loaded = api.post("/images/load", content=oci_tar(tmp_path / "layout", name))
        assert loaded.status_code == 200, loaded.text
        serve = "while :; do echo pong | busybox nc -l -p 8080; done"
        body: dict[str, Any] = {
            "Image": name,
            "Cmd": ["/bin/sh", "-c", serve],
            "ExposedPorts": {"9000/tcp": {}},
            "HostConfig": {"PublishAllPorts": True},
        }
        created = api.post("/v1.47/containers/create", json=body)
        assert created.status_code == 201, created.text
        cid = created.json()["Id"]
        try:
            assert api.post(f"/v1.47/containers/{cid}/start").status_code == 204
            ports = api.get(f"/v1.47/containers/{cid}/json").json()["NetworkSettings"]["Ports"]
            assert set(ports) == {"8080/tcp", "9000/tcp"}  # the image's and the create's
            [binding] = ports["8080/tcp"]
            assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) > 0
            deadline = time.monotonic() + 20
            while (got := host_side(netns, "127.0.0.1", int(binding["HostPort"]))) != "pong":
                assert time.monotonic() < deadline, got
                time.sleep(0.2)
        finally:
            api.delete(f"/v1.47/containers/{cid}", params={"force": "true", "v": "true"})
            api.delete(f"/v1.47/images/{name}", params={"force": "true"})
