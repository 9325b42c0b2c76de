"""Docker's image verbs that make images here, end to end: ``docker import
--change``, ``docker commit`` (untagged, with changes, a config body, comment,
author, parent), ``docker save`` of what they made and ``docker load`` back,
every verb by id and short id, a refused load as a stream error, list
filters, and (a service of its own, a registry as its docker.io mirror)
``/distribution`` through the mirror and ``image prune -a``
(runtime/images/building.py, runtime/images/instructions.py, app/docker/images.py).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import ImageLoadError

from compat.registry import Layout, Registry, tar_layer
from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import DockerCli, cli, ok
from tests.e2e.helpers import unique

__all__ = ["cli"]  # a fixture

APPLETS = ("sh", "cat", "id", "echo", "sleep", "touch")


def rootfs_tar(path: Path, hello: bytes = b"imported\n") -> Path:
    with tarfile.open(path, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        info = tarfile.TarInfo("hello")
        info.size = len(hello)
        tar.addfile(info, io.BytesIO(hello))
    return path


@pytest.fixture
def sdk(service: Service) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    yield client
    client.close()


@pytest.fixture
def imported(cli: DockerCli, tmp_path: Path) -> Iterator[str]:
    """``docker import`` with every kind of ``--change`` and a message, named with a ``/``."""
    name = f"test/{unique('imp')}:v1"
    changes = [
        'CMD ["cat", "/hello"]',
        "ENV GREETING=hi OTHER='two words'",
        "WORKDIR /srv",
        "USER 1000",
        "EXPOSE 8000 53/udp",
        "LABEL tier=test",
        "VOLUME /data",
        "STOPSIGNAL SIGQUIT",
    ]
    args = [a for change in changes for a in ("--change", change)]
    archive = rootfs_tar(tmp_path / "root.tar")
    out = ok(cli("import", *args, "-m", "from a test", str(archive), name))
    assert out.strip().startswith("sha256:")
    yield name
    cli("rmi", "-f", name)


def test_import_changes_are_the_image_config(cli: DockerCli, imported: str) -> None:
    assert ok(cli("run", "--rm", imported)) == "imported\n"  # its Cmd
    said = ok(cli("run", "--rm", imported, "sh", "-c", 'echo "$GREETING|$OTHER|$(pwd)|$(id -u)"'))
    assert said == "hi|two words|/srv|1000\n"
    found = json.loads(ok(cli("image", "inspect", imported)))[0]
    config = found["Config"]
    assert config["Cmd"] == ["cat", "/hello"]
    assert config["User"] == "1000" and config["WorkingDir"] == "/srv"
    assert set(config["ExposedPorts"]) == {"8000/tcp", "53/udp"}
    assert config["Labels"] == {"tier": "test"} and set(config["Volumes"]) == {"/data"}
    assert config["StopSignal"] == "SIGQUIT"
    assert found["Comment"] == "from a test"
    assert found["RepoTags"] == [imported]


def test_import_refuses_an_unknown_change(cli: DockerCli, tmp_path: Path) -> None:
    archive = rootfs_tar(tmp_path / "root.tar")
    refused = cli("import", "--change", "RUN echo no", str(archive), unique("bad"))
    assert refused.returncode == 1
    assert "changes" in refused.stderr and "RUN is not a valid change command" in refused.stderr
    hidden = cli("import", str(archive), "busybox")  # the built-in's name
    assert hidden.returncode == 1 and "exists already (builtin)" in hidden.stderr


def test_commit_untagged_with_changes_config_comment_and_parent(
    sdk: docker.DockerClient, imported: str
) -> None:
    base = sdk.images.get(imported)
    container = sdk.containers.run(imported, ["touch", "/made"], detach=True, user="0")
    try:
        assert container.wait()["StatusCode"] == 0
        made = sdk.api.commit(
            container.id,
            changes=["EXPOSE 9000", 'ENTRYPOINT ["cat"]'],
            message="a note",
            author="tester",
            conf={"Env": ["ADDED=1"]},
        )
        image = sdk.images.get(made["Id"])
        try:
            assert image.tags == []  # no repo: untagged, as docker commit CONTAINER
            attrs = image.attrs
            assert attrs["Parent"] == base.id
            assert (attrs["Comment"], attrs["Author"]) == ("a note", "tester")
            config = attrs["Config"]
            assert config["Entrypoint"] == ["cat"] and config["Cmd"] is None
            assert {"8000/tcp", "9000/tcp"} <= set(config["ExposedPorts"])
            assert "ADDED=1" in config["Env"] and "GREETING=hi" in config["Env"]
            ran = sdk.containers.run(made["Id"], ["/made", "/hello"], remove=True, user="0")
            assert ran == b"imported\n"
            history = sdk.api.history(made["Id"].removeprefix("sha256:")[:12])
            assert history[0]["Id"] == made["Id"] and history[0]["Comment"] == "a note"
        finally:
            sdk.images.remove(made["Id"], force=True)
    finally:
        container.remove(force=True)


def test_save_and_load_an_imported_image_by_its_ids(
    cli: DockerCli, sdk: docker.DockerClient, imported: str, tmp_path: Path
) -> None:
    image_id = sdk.images.get(imported).id
    short = image_id.removeprefix("sha256:")[:12]
    other = f"{unique('alias')}:x"
    ok(cli("tag", short, other))  # by short id
    assert sdk.images.get(other).id == image_id
    ok(cli("save", "-o", str(tmp_path / "named.tar"), imported))  # by name: that tag only
    ok(cli("save", "-o", str(tmp_path / "by-id.tar"), image_id))  # by id: no tag, as Docker
    ok(cli("rmi", other, imported))
    assert image_id not in [i.id for i in sdk.images.list()]
    loaded = ok(cli("load", "-i", str(tmp_path / "by-id.tar")))
    assert loaded.strip() == f"Loaded image ID: {image_id}"
    assert sdk.images.get(short).tags == []
    loaded = ok(cli("load", "-i", str(tmp_path / "named.tar")))
    assert loaded.strip() == f"Loaded image: {imported}"
    assert sdk.images.get(imported).id == image_id  # the same config, the same id
    assert sdk.images.get(short).tags == [imported]
    assert ok(cli("run", "--rm", short)) == "imported\n"


def test_a_refused_load_is_an_error_in_the_stream(
    service: Service, sdk: docker.DockerClient
) -> None:
    with pytest.raises(ImageLoadError):
        sdk.images.load(b"abc")
    answer = httpx.post(f"{service.url}/v1.47/images/load", content=b"abc", timeout=30)
    assert answer.status_code == 200
    line = json.loads(answer.text.splitlines()[0])
    assert "tar" in line["errorDetail"]["message"] and line["error"]
    native = httpx.post(f"{service.url}/images/load", content=b"abc", timeout=30)
    assert native.status_code == 400  # the native API keeps its status


def test_list_filters(sdk: docker.DockerClient, imported: str) -> None:
    repo = imported.rsplit(":", 1)[0]
    image_id = sdk.images.get(imported).id
    assert [i.id for i in sdk.images.list(repo)] == [image_id]
    assert [i.id for i in sdk.images.list(imported)] == [image_id]
    assert [i.id for i in sdk.images.list(filters={"label": "tier=test"})] == [image_id]
    assert image_id not in [i.id for i in sdk.images.list(filters={"dangling": True})]
    assert sdk.images.list(f"{repo}-not") == []


@pytest.fixture
def mirror(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Registry, dict[str, object]]]:
    if not (shutil.which("docker-registry") and shutil.which("skopeo")):
        pytest.skip("needs docker-registry and skopeo (scripts/setup installs them)")
    layout = Layout(tmp_path_factory.mktemp("oci") / "layout")
    layer = tar_layer([("hello", "file", "mirrored\n")])
    manifest = layout.image([layer], cmd=("/hello",))
    layout.tag(manifest, "latest")
    registry = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        registry.push(layout.path, "latest", "library/mirrored")
        yield registry, manifest
    finally:
        registry.stop()


def test_distribution_through_the_mirror_and_prune_all(
    mirror: tuple[Registry, dict[str, object]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    registry, manifest = mirror
    service = Service(
        state_dir=tmp_path_factory.mktemp("svc-mirror") / "state",
        extra_args=["--registry-mirror", f"http://{registry.host}"],
    )
    service.start()
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    try:
        found = client.api.inspect_distribution("mirrored:latest")
        assert found["Descriptor"]["digest"] == manifest["digest"]
        pulled = client.images.pull("mirrored", tag="latest")
        assert "mirrored:latest" in pulled.tags
        # A container shows its image as it was asked for (Docker's Config.Image).
        made = client.containers.create("mirrored", ["/hello"])
        assert made.attrs["Config"]["Image"] == "mirrored"
        assert [c["Image"] for c in client.api.containers(all=True)] == ["mirrored"]
        assert made.attrs["Image"] == pulled.id  # inspect's Image is the id
        made.remove(force=True)
        kept = client.api.prune_images()  # dangling only: a tagged image stays
        assert pulled.id not in [d.get("Deleted") for d in kept["ImagesDeleted"] or []]
        pruned = client.api.prune_images({"dangling": False})
        assert {"Untagged": "mirrored:latest"} in pruned["ImagesDeleted"]
        assert {"Deleted": pulled.id} in pruned["ImagesDeleted"]
        assert pruned["SpaceReclaimed"] > 0
        assert pulled.id not in [i.id for i in client.images.list()]
        assert "busybox:latest" in [t for i in client.images.list() for t in i.tags]
    finally:
        client.close()
        service.close()
