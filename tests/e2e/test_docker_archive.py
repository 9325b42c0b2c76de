"""``docker cp`` both ways with the real CLI, and docker-py's archive calls
(app/docker/archive.py over runtime/archive.py), with real containers."""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound

from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, DockerCli, cli, ok
from tests.e2e.helpers import unique

__all__ = ["cli"]  # a fixture


@pytest.fixture
def box(cli: DockerCli) -> Iterator[str]:
    name = unique("dcp")
    setup = "mkdir -p /data/sub; echo inside > /data/sub/f; ln -s / /tmp/rootlink; exec sleep 300"
    result = cli("run", "-d", "--name", name, IMAGE, "sh", "-c", setup)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 20
    while cli("exec", name, "test", "-L", "/tmp/rootlink").returncode != 0:
        assert time.monotonic() < deadline, "the container's set-up never finished"
        time.sleep(0.05)
    yield name
    cli("rm", "-f", name)


def test_cp_out_of_the_container(cli: DockerCli, box: str, tmp_path: Path) -> None:
    ok(cli("cp", f"{box}:/data", str(tmp_path / "out")))
    assert (tmp_path / "out" / "sub" / "f").read_text() == "inside\n"
    ok(cli("cp", f"{box}:/data/sub/f", str(tmp_path / "single")))
    assert (tmp_path / "single").read_text() == "inside\n"
    missing = cli("cp", f"{box}:/nope", str(tmp_path / "x"))
    assert missing.returncode == 1 and "/nope" in missing.stderr


def test_cp_into_the_container(cli: DockerCli, box: str, tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "deep").mkdir(parents=True)
    (source / "deep" / "hello.txt").write_text("hello\n")
    ok(cli("cp", str(source), f"{box}:/data/copied"))
    assert ok(cli("exec", box, "cat", "/data/copied/deep/hello.txt")) == "hello\n"
    (tmp_path / "one.txt").write_text("one\n")
    ok(cli("cp", str(tmp_path / "one.txt"), f"{box}:/tmp/"))
    assert ok(cli("exec", box, "cat", "/tmp/one.txt")) == "one\n"
    # Through the container's link to /: still the container's root.
    name = unique("viaroot")
    (tmp_path / name).write_text("x\n")
    ok(cli("cp", str(tmp_path / name), f"{box}:/tmp/rootlink/tmp/"))
    assert not os.path.exists(f"/tmp/{name}")
    assert ok(cli("exec", box, "cat", f"/tmp/{name}")) == "x\n"


def test_sdk_put_and_get_archive(service: Service, box: str) -> None:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    try:
        container = client.containers.get(box)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("sdk.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"sdk\n"))
        assert container.put_archive("/data", buffer.getvalue()) is True
        chunks, stat = container.get_archive("/data/sdk.txt")
        assert (stat["name"], stat["size"]) == ("sdk.txt", 4)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("sdk.txt")
            assert member is not None and member.read() == b"sdk\n"
        dir_chunks, dir_stat = container.get_archive("/data")
        assert b"".join(dir_chunks)  # read to its end: the connection goes back
        assert dir_stat["mode"] & (1 << 31)  # Go's ModeDir
        with pytest.raises(NotFound):
            container.get_archive("/nope")
        evil = io.BytesIO()
        with tarfile.open(fileobj=evil, mode="w") as tar:
            info = tarfile.TarInfo("../../../../tmp/sdk-escape")
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(APIError) as caught:
            container.put_archive("/data", evil.getvalue())
        assert caught.value.status_code == 400
        assert not os.path.exists("/tmp/sdk-escape")
    finally:
        client.close()


def test_cli_diff_and_export(cli: DockerCli, tmp_path: Path) -> None:
    name = unique("ddiff")
    script = "echo new > /tmp/new; rm /etc/group; exec sleep 300"
    ok(cli("run", "-d", "--name", name, IMAGE, "sh", "-c", script))
    deadline = time.monotonic() + 20
    while "A /tmp/new" not in (diff := ok(cli("diff", name))):
        assert time.monotonic() < deadline, diff
        time.sleep(0.05)
    assert {"C /tmp", "A /tmp/new", "D /etc/group"} <= set(diff.splitlines())
    ok(cli("export", "-o", str(tmp_path / "root.tar"), name))
    with tarfile.open(tmp_path / "root.tar") as tar:
        names = set(tar.getnames())
    assert "tmp/new" in names and "etc/group" not in names and "bin/sh" in names
    ok(cli("rm", "-f", name))
    missing = cli("diff", name)
    assert missing.returncode == 1 and "no such container" in missing.stderr.lower()


def test_cli_commit(cli: DockerCli, box: str) -> None:
    image = unique("dcommit")
    ok(cli("commit", box, image))
    assert ok(cli("run", "--rm", image, "cat", "/data/sub/f")) == "inside\n"
    changed = unique("dcommit")
    ok(cli("commit", "-c", 'CMD ["cat", "/data/sub/f"]', box, changed))
    assert ok(cli("run", "--rm", changed)) == "inside\n"  # the image's new Cmd
    ok(cli("rmi", image, changed))


def test_sdk_diff_export_commit(service: Service, box: str) -> None:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    try:
        container = client.containers.get(box)
        assert {"Path": "/data/sub/f", "Kind": 1} in container.diff()
        exported = b"".join(container.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
            assert "data/sub/f" in tar.getnames()
        name = unique("sdkcommit")
        image = container.commit(repository=name)  # looks the image up by its Id
        assert image.id.startswith("sha256:")
        assert client.containers.run(name, ["cat", "/data/sub/f"], remove=True) == b"inside\n"
        client.images.remove(name)
    finally:
        client.close()


def test_cp_out_of_an_exited_container(cli: DockerCli, tmp_path: Path) -> None:
    name = unique("dcpx")
    ok(cli("run", "--name", name, IMAGE, "sh", "-c", "mkdir /results; echo 42 > /results/n"))
    ok(cli("cp", f"{name}:/results", str(tmp_path / "results")))
    assert (tmp_path / "results" / "n").read_text() == "42\n"
    # Into it too, as Docker: the next run sees the files.
    (tmp_path / "results" / "n").write_text("43\n")
    ok(cli("cp", str(tmp_path / "results"), f"{name}:/tmp/"))
    ok(cli("cp", f"{name}:/tmp/results/n", str(tmp_path / "back")))
    assert (tmp_path / "back").read_text() == "43\n"
    ok(cli("rm", name))


def test_sdk_copies_into_a_created_container_and_out_of_its_volume(service: Service) -> None:
    """docker-py's ArchiveTest: ``put_archive`` into a created container (its
    root is built only at start) on an anonymous volume and beside it, then
    ``get_archive`` of the volume after it has exited."""
    client = docker.APIClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    try:
        script = "ls -p /vol1; cat /etc/conf/x.txt; echo written > /vol1/out.txt"
        made = client.create_container(IMAGE, ["sh", "-c", script], volumes=["/vol1"])
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in (("a.py", b"a"), ("foo/b.py", b"b")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        assert client.put_archive(made, "/vol1", buffer.getvalue()) is True
        conf = io.BytesIO()
        with tarfile.open(fileobj=conf, mode="w") as tar:
            info = tarfile.TarInfo("conf/x.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert client.put_archive(made, "/etc", conf.getvalue()) is True
        client.start(made)
        assert client.wait(made)["StatusCode"] == 0
        assert client.logs(made) == b"a.py\nfoo/\nhello\n"
        chunks, stat = client.get_archive(made, "/vol1/out.txt")
        assert (stat["name"], stat["size"]) == ("out.txt", 8)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("out.txt")
            assert member is not None and member.read() == b"written\n"
        chunks, stat = client.get_archive(made, "/vol1")
        assert stat["name"] == "vol1"
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert sorted(tar.getnames()) == [
                "vol1",
                "vol1/a.py",
                "vol1/foo",
                "vol1/foo/b.py",
                "vol1/out.txt",
            ]
        client.remove_container(made, v=True)
    finally:
        client.close()


def test_cli_create_cp_start(cli: DockerCli, tmp_path: Path) -> None:
    """The usual ``docker create; docker cp CONFIG c:/etc/; docker start -a``:
    the created container's root is not built yet, the copy goes to its
    writable layer and the run sees it; ``docker rm`` needs no ``-f``."""
    name = unique("dcpc")
    ok(cli("create", "--name", name, IMAGE, "cat", "/etc/app.conf"))
    (tmp_path / "app.conf").write_text("setting=1\n")
    ok(cli("cp", str(tmp_path / "app.conf"), f"{name}:/etc/"))
    ok(cli("cp", f"{name}:/etc/app.conf", str(tmp_path / "back.conf")))
    assert (tmp_path / "back.conf").read_text() == "setting=1\n"
    assert ok(cli("start", "-a", name)) == "setting=1\n"
    ok(cli("rm", name))
