"""Pulled images end to end: a real registry, the service's /images/pull, containers on them.

The registry is Debian's ``docker-registry`` on a free loopback port; the
images are OCI layouts built in the test (tests/e2e/oci_registry.py: a
busybox layer, then one that deletes a file, replaces one and makes a
directory opaque) pushed with ``skopeo copy``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT, Service, free_port, logs, run
from tests.e2e.oci_registry import Layout, Proxy, Registry, base_layer, sha, top_layer
from tests.e2e.pulled_images import TokenRegistry, start_app_registry

pytestmark = pytest.mark.skipif(
    not (shutil.which("docker-registry") and shutil.which("skopeo")),
    reason="needs docker-registry and skopeo (scripts/setup installs them)",
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_app_registry(tmp_path_factory)
    yield reg
    reg.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    p = Proxy(registry.host)
    yield p
    p.close()


def pull(client: httpx.Client, reference: str, **params: Any) -> httpx.Response:
    return client.post("/images/pull", json={"reference": reference}, params=params)


def layer_dirs(service: Service) -> set[str]:
    return {p.name for p in (service.state_dir / "images" / "layers" / "sha256").iterdir()}


def blob_files(service: Service) -> set[str]:
    return {p.name for p in (service.state_dir / "images" / "blobs" / "sha256").iterdir()}


def delete_all(client: httpx.Client, *refs: str) -> None:
    for ref in refs:
        client.delete(f"/images/{ref}", params={"force": "true"})


def test_pull_inspect_and_run_with_the_image_config(
    client: httpx.Client, registry: Registry
) -> None:
    ref = f"{registry.host}/e2e/app:app"
    response = pull(client, ref)
    assert response.status_code == 201, response.text
    image = response.json()
    try:
        assert image["kind"] == "pulled" and image["name"] == ref
        assert image["tags"] == [ref]
        assert image["id"].startswith("sha256:") and len(image["id"]) == 71
        assert image["layers"] == [sha(base_layer()), sha(top_layer())]
        assert image["digests"][0].startswith(f"{registry.host}/e2e/app@sha256:")
        config = image["config"]
        assert config["entrypoint"] == ["/bin/sh", "-c"] and config["user"] == "1000:1000"
        assert config["exposed_ports"] == ["8080/tcp"] and config["volumes"] == ["/data"]
        assert config["stop_signal"] == "SIGQUIT" and config["working_dir"] == "/work/dir"
        # by tag, by digest, by id and by short id
        for name in (ref, image["digests"][0], image["id"], image["id"][7:19]):
            got = client.get(f"/images/{name}")
            assert got.status_code == 200, (name, got.text)
            assert got.json()["id"] == image["id"]
        assert image["id"] in [i["id"] for i in client.get("/images").json()]

        # no command: Entrypoint + Cmd, with Env, WorkingDir (made) and User
        done = run(client, [], image=ref)
        assert done["exit_code"] == 0, done
        assert logs(client, done["id"]) == "hello from /work/dir as 1000:1000\n"
        assert done["image"] == ref
        labels = client.get(f"/containers/{done['id']}").json()["labels"]
        assert labels == {"test": "registry", "tier": "app"}
        # a command replaces Cmd and keeps the Entrypoint; the request's env wins
        done = run(client, ["echo $GREETING; cat /etc/motd"], image=ref, env={"GREETING": "hi"})
        assert logs(client, done["id"]) == "hi\nnew motd\n"
        # an entrypoint replaces the image's and drops its Cmd; user and workdir override
        done = run(
            client,
            ["-c", "ls /opaque; test -e /etc/gone || echo gone; busybox id -u; pwd"],
            image=ref,
            entrypoint=["/bin/sh"],
            user="0",
            workdir="/tmp",
        )
        assert logs(client, done["id"]) == "new\ngone\n0\n/tmp\n"
    finally:
        for c in client.get("/containers", params={"all": "true"}).json():
            if c["image"] == ref:
                client.delete(f"/containers/{c['id']}", params={"force": "true"})
        delete_all(client, ref)


@pytest.mark.skipif(not shutil.which("umoci"), reason="needs umoci (scripts/setup installs it)")
def test_an_image_built_by_umoci_runs_with_its_config(
    client: httpx.Client, registry: Registry
) -> None:
    ref = f"{registry.host}/e2e/umoci:u"
    response = pull(client, ref)
    assert response.status_code == 201, response.text
    try:
        assert len(response.json()["layers"]) == 2
        done = run(client, [], image=ref)
        assert done["exit_code"] == 0, done
        assert logs(client, done["id"]) == "two\nmotd\n/made/here\n1000\n"
        client.delete(f"/containers/{done['id']}")
    finally:
        delete_all(client, ref)


def test_no_command_and_an_image_without_one_is_a_422_naming_command(
    client: httpx.Client,
) -> None:
    for body in ({"image": "busybox"}, {"image": "busybox", "command": []}):
        response = client.post("/containers", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "command"]


def test_a_container_in_a_user_namespace_runs_on_shifted_layers(
    client: httpx.Client, registry: Registry
) -> None:
    ref = f"{registry.host}/e2e/app:app"
    assert pull(client, ref).status_code == 201
    try:
        script = (
            "busybox id -u; cat /etc/motd; ls /opaque; test -e /etc/gone || echo gone;"
            " echo w > /etc/motd && cat /etc/motd"
        )
        done = run(client, [script], image=ref, userns=True, user="0")
        assert done["exit_code"] == 0, done
        assert logs(client, done["id"]) == "0\nnew motd\nnew\ngone\nw\n"
        client.delete(f"/containers/{done['id']}")
    finally:
        delete_all(client, ref)


def test_progress_stream_and_a_re_pull_fetches_only_the_manifest(
    client: httpx.Client, service: Service, proxy: Proxy
) -> None:
    ref = f"{proxy.host}/e2e/three:three"
    response = pull(client, ref, progress="true")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    try:
        assert [step["status"] for step in lines[:3]] == ["Pulling fs layer"] * 3
        done = [step["layer"] for step in lines if step.get("status") == "Pull complete"]
        assert len(done) == 3
        assert any(step.get("status") == "Downloading" for step in lines)
        assert lines[-1]["image"]["tags"] == [ref]
        fetched = sum(proxy.blob_gets.values())
        assert fetched == 4  # the config and three layers

        again = [json.loads(line) for line in pull(client, ref, progress="true").text.splitlines()]
        assert [s["status"] for s in again[3:6]] == ["Already exists"] * 3
        assert again[-1]["image"]["id"] == lines[-1]["image"]["id"]
        assert sum(proxy.blob_gets.values()) == fetched  # only the manifest, no blob again
    finally:
        delete_all(client, ref)


def test_layers_are_shared_and_freed_with_the_last_image(
    client: httpx.Client, service: Service, registry: Registry
) -> None:
    app, base = f"{registry.host}/e2e/app:app", f"{registry.host}/e2e/base:base"
    before_layers, before_blobs = layer_dirs(service), blob_files(service)
    assert pull(client, app).status_code == 201
    assert pull(client, base).status_code == 201
    base_hex, top_hex = sha(base_layer())[7:], sha(top_layer())[7:]
    assert {base_hex, top_hex} <= layer_dirs(service)
    # a container keeps its image
    used = run(client, ["true"], image=base)
    response = client.delete(f"/images/{base}")
    assert response.status_code == 409 and used["name"] in response.text
    client.delete(f"/containers/{used['id']}")
    assert client.delete(f"/images/{app}").status_code == 204
    assert client.get(f"/images/{app}").status_code == 404
    assert base_hex in layer_dirs(service) and top_hex not in layer_dirs(service)
    assert client.delete(f"/images/{base}").status_code == 204
    assert layer_dirs(service) == before_layers and blob_files(service) == before_blobs


def test_tags_untag_force_and_prune(client: httpx.Client, registry: Registry) -> None:
    base = f"{registry.host}/e2e/base:base"
    image = pull(client, base).json()
    try:
        tagged = client.post(f"/images/{base}/tag", json={"tag": "mine/base:v1"})
        assert tagged.status_code == 201, tagged.text
        assert sorted(tagged.json()["tags"]) == sorted([base, "mine/base:v1"])
        assert client.get("/images/docker.io/mine/base:v1").json()["id"] == image["id"]
        # by id with two tags: refused without force
        assert client.delete(f"/images/{image['id']}").status_code == 409
        # one tag of two: only untagged
        assert client.delete("/images/mine/base:v1").status_code == 204
        assert client.get(f"/images/{base}").json()["tags"] == [base]
        assert client.get("/images/mine/base:v1").status_code == 404
        assert client.post(f"/images/{base}/tag", json={"tag": "Bad:Tag"}).status_code == 422
        # prune leaves tagged images
        assert client.post("/images/prune").json() == {"deleted": []}
        assert client.get(f"/images/{base}").status_code == 200
    finally:
        delete_all(client, base, "mine/base:v1")


def test_errors_name_the_tag_the_reference_and_the_registry(
    client: httpx.Client, registry: Registry
) -> None:
    response = pull(client, f"{registry.host}/e2e/app:nope")
    assert response.status_code == 404 and "e2e/app:nope" in response.text
    response = pull(client, "Not A Reference")
    assert response.status_code == 422 and "reference" in response.text
    dead = f"127.0.0.1:{free_port()}/e2e/app:app"
    started = time.monotonic()
    response = pull(client, dead)
    assert response.status_code == 502 and "does not answer" in response.text
    assert time.monotonic() - started < 10
    # progress: the same errors, as the stream's last line
    lines = pull(client, f"{registry.host}/e2e/app:nope", progress="true").text.splitlines()
    assert json.loads(lines[-1])["status_code"] == 404


def test_a_corrupted_blob_is_refused_and_leaves_nothing(
    client: httpx.Client, service: Service, proxy: Proxy
) -> None:
    layers, blobs = layer_dirs(service), blob_files(service)
    proxy.corrupt.add(sha(gzip.compress(top_layer(), mtime=0)))
    response = pull(client, f"{proxy.host}/e2e/app:app")
    assert response.status_code in (502, 503), response.text
    assert "hashes to" in response.text or "digest" in response.text
    assert client.get(f"/images/{proxy.host}/e2e/app:app").status_code == 404
    assert layer_dirs(service) == layers and blob_files(service) == blobs
    ingest = service.state_dir / "images" / "blobs" / "ingest"
    assert list(Path(ingest).iterdir()) == []


def mydocker(
    service: Service, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, "MYDOCKER_HOST": service.url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_the_cli_pulls_with_bars_lists_tags_runs_saves_loads_and_removes(
    service: Service, registry: Registry, tmp_path: Path
) -> None:
    ref, base = f"{registry.host}/e2e/app:app", f"{registry.host}/e2e/base:base"
    try:
        pulled = mydocker(service, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        lines = pulled.stdout.splitlines()
        assert sum(line.endswith(": Pull complete") for line in lines) == 2
        assert lines[-2].startswith("Digest: sha256:")
        again = mydocker(service, "pull", ref)
        cached = [line for line in again.stdout.splitlines() if line.endswith("(cached)")]
        assert len(cached) == 2
        assert mydocker(service, "tag", ref, "mine/app:v3").returncode == 0
        listed = mydocker(service, "images").stdout
        assert ref in listed and "mine/app:v3" in listed
        ran = mydocker(service, "run", "--image", ref)
        assert (ran.returncode, ran.stdout) == (0, "hello from /work/dir as 1000:1000\n"), ran
        # run of a missing image pulls it first (its one layer is app's bottom one: cached)
        ran = mydocker(service, "run", "--image", base, "--", "busybox", "cat", "/etc/motd")
        assert (ran.returncode, ran.stdout) == (0, "old motd\n"), ran.stderr
        assert "Unable to find image" in ran.stderr and "Already exists (cached)" in ran.stderr
        assert mydocker(service, "rmi", "mine/app:v3").returncode == 0
        # save to a file, remove, load it back: the same image, runnable again
        saved = tmp_path / "app.tar"
        assert mydocker(service, "save", ref, "-o", str(saved)).returncode == 0
        assert tarfile.is_tarfile(saved)
        remove_containers_of(service, ref, base)
        assert mydocker(service, "rmi", ref).returncode == 0
        loaded = mydocker(service, "load", "-i", str(saved))
        assert (loaded.returncode, loaded.stdout) == (0, f"Loaded image: {ref}\n"), loaded
        ran = mydocker(service, "run", "--image", ref)
        assert (ran.returncode, ran.stdout) == (0, "hello from /work/dir as 1000:1000\n"), ran
        missing = mydocker(service, "pull", f"{registry.host}/e2e/app:nope")
        assert missing.returncode != 0 and "e2e/app:nope" in missing.stderr
    finally:
        remove_containers_of(service, ref, base)
        with httpx.Client(base_url=service.url, timeout=60) as client:
            delete_all(client, ref, base, "mine/app:v3")


def remove_containers_of(service: Service, *images: str) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for c in client.get("/containers", params={"all": "true"}).json():
            if c["image"] in images:
                client.delete(f"/containers/{c['id']}", params={"force": "true"})


def test_export_and_load_round_trip_and_docker_save_load(
    client: httpx.Client, service: Service, registry: Registry, tmp_path: Path
) -> None:
    ref = f"{registry.host}/e2e/app:app"
    image = pull(client, ref).json()
    try:
        exported = client.get(f"/images/{ref}/export")
        assert exported.status_code == 200, exported.text
        saved = tmp_path / "app.tar"
        saved.write_bytes(exported.content)
        with tarfile.open(saved) as tar:
            names = set(tar.getnames())
            assert {"oci-layout", "index.json", "manifest.json"} <= names
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest[0]["RepoTags"] == [ref] and len(manifest[0]["Layers"]) == 2
        assert client.delete(f"/images/{ref}").status_code == 204
        loaded = client.post("/images/load", content=saved.read_bytes())
        assert loaded.status_code == 200, loaded.text
        assert [(i["id"], i["tags"]) for i in loaded.json()] == [(image["id"], [ref])]
        done = run(client, [], image=ref)
        assert logs(client, done["id"]) == "hello from /work/dir as 1000:1000\n"
        client.delete(f"/containers/{done['id']}")
        # the OCI layout alone (no manifest.json) loads too, under a new name
        oci = tmp_path / "oci.tar"
        with tarfile.open(saved) as src, tarfile.open(oci, "w") as dst:
            for member in src.getmembers():
                if member.name != "manifest.json":
                    dst.addfile(member, src.extractfile(member))
        assert client.delete(f"/images/{ref}").status_code == 204
        loaded = client.post("/images/load", content=oci.read_bytes())
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()[0]["tags"] == [ref]
        assert client.post("/images/load", content=b"not a tar").status_code == 400
        assert client.get("/images/busybox/export").status_code == 422
    finally:
        delete_all(client, ref)


PASSWORD = "e2e-Pull-Secret"


def test_basic_auth_registry_and_the_password_is_never_logged_or_recorded(
    client: httpx.Client, service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    layout = Layout(tmp_path_factory.mktemp("oci-auth") / "layout")
    layout.tag(layout.image([base_layer()]), "v1")
    reg = Registry(tmp_path_factory.mktemp("registry-auth"), users={"alice": PASSWORD}).start()
    ref = f"{reg.host}/private/base:v1"
    try:
        reg.push(layout.path, "v1", "private/base", creds=f"alice:{PASSWORD}")
        assert pull(client, ref).status_code == 403
        wrong = {"reference": ref, "auth": {"username": "alice", "password": "nope"}}
        assert client.post("/images/pull", json=wrong).status_code == 403
        good = {"reference": ref, "auth": {"username": "alice", "password": PASSWORD}}
        response = client.post("/images/pull", json=good)
        assert response.status_code == 201, response.text
        assert PASSWORD not in response.text
        log = service.state_dir.parent / f"service-{service.port}.log"
        assert PASSWORD not in log.read_text(errors="replace")
        # records, events, the image store: nowhere in the state dir
        for path in service.state_dir.rglob("*"):
            if path.is_file() and not path.is_socket() and path.stat().st_size < 16 << 20:
                assert PASSWORD.encode() not in path.read_bytes(), path
    finally:
        delete_all(client, ref)
        reg.stop()


def test_an_index_of_two_platforms_pulls_the_hosts(
    client: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    layout = Layout(tmp_path_factory.mktemp("oci-multi") / "layout")
    amd = layout.image([base_layer("amd64")], arch="amd64")
    arm = layout.image([base_layer("arm64")], arch="arm64")
    layout.tag(
        layout.index(
            [
                {**arm, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {**amd, "platform": {"os": "linux", "architecture": "amd64"}},
            ]
        ),
        "multi",
    )
    reg = Registry(tmp_path_factory.mktemp("registry-multi")).start()
    ref = f"{reg.host}/e2e/multi:multi"
    try:
        reg.push(layout.path, "multi", "e2e/multi", all_platforms=True)
        image = pull(client, ref).json()
        assert image["config"]["architecture"] == "amd64"
        assert image["digests"] == [f"{reg.host}/e2e/multi@{amd['digest']}"]
        done = run(client, ["busybox cat /arch"], image=ref, entrypoint=["/bin/sh", "-c"])
        assert logs(client, done["id"]) == "amd64\n"
        client.delete(f"/containers/{done['id']}")
    finally:
        delete_all(client, ref)
        reg.stop()


def test_a_registry_mirror_serves_docker_hub_references(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--registry-mirror: docker.io/e2e/base goes to the mirror first (no internet here)."""
    own = Service(
        state_dir=tmp_path_factory.mktemp("svc-mirror") / "state",
        port=free_port(),
        extra_args=["--registry-mirror", f"http://{registry.host}"],
    )
    own.start()
    try:
        with httpx.Client(base_url=own.url, timeout=60) as client:
            image = pull(client, "e2e/base:base")
            assert image.status_code == 201, image.text
            assert image.json()["tags"] == ["e2e/base:base"]
            assert client.get("/images/docker.io/e2e/base:base").status_code == 200
    finally:
        own.close()


def test_the_bearer_token_flow_through_the_service(
    client: httpx.Client, service: Service, registry: Registry
) -> None:
    bearer = TokenRegistry(registry.host, "bob", PASSWORD)
    ref = f"{bearer.host}/e2e/base:base"
    try:
        response = pull(client, ref)  # anonymous: the token endpoint refuses
        assert response.status_code == 403 and "anonymous" in response.text
        body = {"reference": ref, "auth": {"username": "bob", "password": PASSWORD}}
        response = client.post("/images/pull", json=body)
        assert response.status_code == 201, response.text
        assert "scope=repository%3Ae2e%2Fbase%3Apull" in bearer.token_requests[-1]
        assert "service=e2e" in bearer.token_requests[-1]
        log = service.state_dir.parent / f"service-{service.port}.log"
        assert PASSWORD not in log.read_text(errors="replace")
        assert TokenRegistry.TOKEN not in log.read_text(errors="replace")
    finally:
        delete_all(client, ref)
        bearer.close()


def test_a_tarball_import_takes_name_and_tag(client: httpx.Client, service: Service) -> None:
    rootfs = service.state_dir / "images" / "busybox" / "rootfs"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(rootfs, arcname=".")
    name = f"tagged-{os.getpid()}:v1"
    imported = client.post("/images", params={"name": name}, content=buffer.getvalue())
    assert imported.status_code == 201, imported.text
    try:
        assert (imported.json()["name"], imported.json()["tags"]) == (name, [name])
        assert client.get(f"/images/{name.split(':')[0]}").status_code == 404
        done = run(client, ["echo", "tagged"], image=name)
        assert logs(client, done["id"]) == "tagged\n"
        client.delete(f"/containers/{done['id']}")
    finally:
        assert client.delete(f"/images/{name}").status_code == 204
