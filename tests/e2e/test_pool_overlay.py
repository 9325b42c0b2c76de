"""The warm pool for an overlay-root image (busybox) over HTTP, with real
containers (runtime/launcher/pool.py, runtime/launcher/poollayers.py): a
pooled launch writes into an upper dir of its own, which the claim moved
into the container's layer dir (what changes, export, commit and
auto-remove read), the next pooled container sees none of it, the metrics
count the hits, a restart keeps the container's layer, an image named for
the pool is warm from its pull on, a launcher killed with SIGKILL leaves no
pooled child's dir or cgroup once the next one started, and an API killed
with SIGKILL leaves the launcher's pool as it was."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.launcher.poollayers import POOL_LAYERS
from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, eventually, unique, wait_for_output
from tests.e2e.netservice import Namespace, NetService
from tests.e2e.pulled_images import start_app_registry
from tests.e2e.test_changes import SCRIPT
from tests.e2e.test_metrics import scrape
from tests.e2e.test_networks import logs as net_logs
from tests.e2e.test_networks import network
from tests.e2e.test_networks import run as net_run
from tests.e2e.test_pool import (
    hits,
    launcher_children,
    pool_cgroups,
    pool_client,
    pool_service,
    pooled_children,
    wait_ready,
)

HOST_POOL, BUSYBOX_POOL = 1, 2
ARGS = ["--pool-size", str(HOST_POOL), "--pool-images", f"busybox={BUSYBOX_POOL}"]
READY = HOST_POOL + BUSYBOX_POOL


def children_dirs(state_dir: Path) -> list[str]:
    path = state_dir.joinpath(*POOL_LAYERS)
    return sorted(os.listdir(path)) if path.exists() else []


def changes(client: httpx.Client, ref: str) -> dict[str, str]:
    got = client.get(f"/containers/{ref}/changes")
    assert got.status_code == 200, got.text
    return {c["path"]: c["kind"] for c in got.json()}


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from pool_service(tmp_path_factory, ARGS)


@pytest.fixture
def client(pooled: Service) -> Iterator[httpx.Client]:
    yield from pool_client(pooled)


def pooled_run(client: httpx.Client, command: list[str], **spec: object) -> dict[str, Any]:
    """A busybox launch that a pooled child served (the hit counted)."""
    wait_ready(client, READY)
    before = hits(client)
    done = run(client, command, image="busybox", **spec)
    assert hits(client) == before + 1, "not served by a pooled child"
    return done


def test_a_pooled_launch_writes_what_the_next_one_does_not_see(
    client: httpx.Client, pooled: Service
) -> None:
    first = pooled_run(
        client, ["sh", "-c", "echo a > /marker; echo b > /etc/marker; mkdir /made; hostname"]
    )
    assert first["exit_code"] == 0, first
    assert logs(client, str(first["id"])) == f"{str(first['id'])[:12]}\n"
    second = pooled_run(client, ["ls", "-A", "/", "/etc"])
    assert second["exit_code"] == 0, second
    listed = logs(client, str(second["id"])).split()
    assert "bin" in listed and "passwd" in listed
    assert "marker" not in listed and "made" not in listed
    # Each container's writable layer is its own, where the API looks for it.
    assert changes(client, str(first["id"])) == {
        "/marker": "added",
        "/etc": "modified",
        "/etc/marker": "added",
        "/made": "added",
    }
    assert changes(client, str(second["id"])) == {}
    upper = pooled.state_dir / "containers" / str(first["id"]) / "layer" / "rw" / "upper"
    assert (upper / "marker").read_text() == "a\n"
    # Its disk usage is read there too (docker system df's SizeRw).
    usage = client.get("/v1.47/system/df").json()
    size = {c["Id"]: c["SizeRw"] for c in usage["Containers"]}
    assert size[first["id"]] >= 4 and size[second["id"]] == 0


def test_a_pooled_containers_counters_start_at_zero_and_limits_apply(
    client: httpx.Client,
) -> None:
    busy = pooled_run(client, ["sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"])
    assert busy["cpu_seconds"] > 0.05, busy
    idle = pooled_run(client, ["true"])
    # None of the earlier container's CPU, none of the fill's.
    assert idle["cpu_seconds"] < 0.05, idle
    # The pids limit written at the claim: sh and two more, the third fork fails.
    forked = pooled_run(
        client, ["sh", "-c", "for i in 1 2 3 4; do sleep 2 & done; wait"], limits={"pids": 3}
    )
    assert "can't fork" in logs(client, str(forked["id"])), forked


def test_changes_and_export_of_a_pooled_container(client: httpx.Client) -> None:
    done = pooled_run(client, ["sh", "-c", SCRIPT])
    assert done["exit_code"] == 0, done
    ref = str(done["id"])
    found = changes(client, ref)
    assert found["/tmp/new"] == "added" and found["/etc/group"] == "deleted"
    assert found["/etc/passwd"] == "modified" and found["/opt/made/deep/f"] == "added"
    got = client.get(f"/containers/{ref}/export")
    assert got.status_code == 200, got.text
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().endswith(b"changed\n")
    assert {"tmp/new", "opt/made/deep/f", "home/only"} <= names
    assert "etc/group" not in names


def test_a_running_pooled_container_writes_into_its_moved_layer(client: httpx.Client) -> None:
    """Written after the claim moved the upper dir: the mount follows it,
    so changes and commit see what the running container writes."""
    wait_ready(client, READY)
    before = hits(client)
    container = create(
        client, ["sh", "-c", "sleep 0.2; echo kept > /kept; exec sleep 300"], image="busybox"
    )
    assert hits(client) == before + 1
    ref = container["id"]
    eventually(lambda: "/kept" in changes(client, ref), what="the running container's write")
    name = unique("pooledcommit")
    got = client.post(f"/containers/{ref}/commit", params={"name": name})
    assert got.status_code == 201, got.text
    child = run(client, ["cat", "/kept"], image=name)
    assert logs(client, child["id"]) == "kept\n"
    client.delete(f"/containers/{child['id']}")
    client.delete(f"/containers/{ref}", params={"force": "true"})
    assert client.delete(f"/images/{name}").status_code == 204


def test_a_restarted_pooled_container_keeps_its_layer(client: httpx.Client) -> None:
    """A restart is not served by a pooled child: its swap would set the
    layer the container wrote aside."""
    wait_ready(client, READY)
    before = scrape(client)
    script = "echo run; cat /marker 2>/dev/null; echo kept > /marker; exec sleep 300"
    container = create(client, ["sh", "-c", script], image="busybox")
    wait_for_output(client, container["id"], "run")
    got = client.post(f"/containers/{container['id']}/restart", params={"timeout": 1})
    assert got.status_code == 200, got.text
    wait_for_output(client, container["id"], "kept")
    assert changes(client, container["id"])["/marker"] == "added"
    after = scrape(client)
    for outcome in ("hit", "miss"):  # the first run pooled, the restart cold
        metric = f'mydocker_pool_claims_total{{outcome="{outcome}"}}'
        assert after[metric] == before[metric] + 1
    client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_auto_remove_of_a_pooled_container_leaves_no_layer(
    client: httpx.Client, pooled: Service
) -> None:
    wait_ready(client, READY)
    before = hits(client)
    got = client.post(
        "/containers",
        params={"wait": "true"},
        json={"command": ["sh", "-c", "echo x > /x"], "image": "busybox", "auto_remove": True},
    )
    assert got.status_code in (200, 201), got.text
    ref = got.json()["id"]
    assert hits(client) == before + 1
    eventually(lambda: not (pooled.state_dir / "containers" / ref).exists(), what="the removal")


def test_specs_the_pool_cannot_serve_take_the_cold_path(client: httpx.Client) -> None:
    """A read-only root (a tmpfs under its upper dir) and a user mount go
    cold, and still work."""
    wait_ready(client, READY)
    before = scrape(client)
    read_only = run(client, ["sh", "-c", "touch /x"], image="busybox", read_only=True)
    assert read_only["exit_code"] != 0
    mounted = run(
        client,
        ["sh", "-c", "echo y > /scratch/y && cat /scratch/y"],
        image="busybox",
        mounts=[{"type": "tmpfs", "target": "/scratch"}],
    )
    assert logs(client, mounted["id"]) == "y\n"
    after = scrape(client)
    for outcome, more in (("hit", 0), ("miss", 2)):
        metric = f'mydocker_pool_claims_total{{outcome="{outcome}"}}'
        assert after[metric] == before[metric] + more


def test_the_pool_keeps_one_dir_per_unclaimed_child(client: httpx.Client, pooled: Service) -> None:
    wait_ready(client, READY)
    launcher = pooled.launcher_pid()
    # Claimed children's dirs go at the next fill; the ready ones stay.
    eventually(
        lambda: len(children_dirs(pooled.state_dir)) == BUSYBOX_POOL,
        what=f"{BUSYBOX_POOL} children dirs",
    )
    assert all(d.startswith(f"pool-{launcher}-") for d in children_dirs(pooled.state_dir))


def start_ready(service: Service) -> tuple[int, set[int]]:
    """``service`` started with ``ARGS`` and its pool full: its launcher
    and the launcher's children, the pooled ones and its zygote."""
    service.extra_args = list(ARGS)
    service.start()
    with httpx.Client(base_url=service.url, timeout=60) as client:
        wait_ready(client, READY)
    launcher = service.launcher_pid()
    assert launcher is not None
    children, zygote = pooled_children(launcher)
    assert len(children) == READY
    assert len(zygote) == 1, zygote
    assert len(children_dirs(service.state_dir)) == BUSYBOX_POOL
    return launcher, children | zygote


def test_sigkill_of_the_launcher_leaks_no_pooled_layer_or_cgroup(own_service: Service) -> None:
    launcher, children = start_ready(own_service)
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        own_service.stop_launcher()
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{pid}") for pid in children):
            assert time.monotonic() < deadline, "pooled children or zygote outlived the launcher"
            time.sleep(0.05)
        assert run(client, ["true"], image="busybox")["exit_code"] == 0  # a new launcher
        old = f"pool-{launcher}-"
        eventually(
            lambda: (
                not [d for d in children_dirs(own_service.state_dir) if d.startswith(old)]
                and not pool_cgroups(own_service.state_dir, launcher)
            ),
            what="the dead launcher's pool dirs and cgroups removed",
        )
        done = pooled_run(client, ["sh", "-c", "ls -A /"])
        assert done["exit_code"] == 0, done


def test_a_pulled_image_named_for_the_pool_is_warm_from_its_pull_on(
    own_service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Named in --pool-images before it is in the store: its pull adds its
    template (three layers: the overlay's lower dirs stacked), a launch of
    it is served pooled with a fresh upper dir, and its delete drops it."""
    registry = start_app_registry(tmp_path_factory)
    try:
        ref = f"{registry.host}/e2e/three:three"
        own_service.extra_args = ["--pool-size", "1", "--pool-images", f"{ref}=1"]
        own_service.start()
        with httpx.Client(base_url=own_service.url, timeout=60) as client:
            wait_ready(client, 1)
            pulled = client.post("/images/pull", json={"reference": ref})
            assert pulled.status_code == 201, pulled.text
            wait_ready(client, 2)
            for _ in range(2):
                before = hits(client)
                done = run(client, ["sh", "-c", "ls -A /; touch /mine"], image=ref)
                assert done["exit_code"] == 0, done
                assert hits(client) == before + 1
                assert "mine" not in logs(client, done["id"]).split()
                assert changes(client, done["id"]) == {"/mine": "added"}
                client.delete(f"/containers/{done['id']}")
                wait_ready(client, 2)
            assert client.delete(f"/images/{ref}").status_code == 204
            eventually(
                lambda: scrape(client).get('mydocker_pool_children{state="ready"}') == 1,
                what="the deleted image's children drained",
            )
    finally:
        registry.stop()


def test_sigkill_of_the_api_keeps_the_pool_and_leaks_nothing(own_service: Service) -> None:
    """The launcher outlives the API with its pooled children; the API's
    next start sends the same templates, which drains nothing: the same
    children serve the next launches, and no pool dir is left over."""
    launcher, children = start_ready(own_service)
    dirs = children_dirs(own_service.state_dir)
    own_service.stop(signal.SIGKILL)
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        wait_ready(client, READY)
        assert own_service.launcher_pid() == launcher
        assert launcher_children(launcher) == children  # not drained, not refilled
        assert children_dirs(own_service.state_dir) == dirs
        done = pooled_run(client, ["sh", "-c", "echo x > /x"])
        assert done["exit_code"] == 0, done
        assert changes(client, str(done["id"])) == {"/x": "added"}
        eventually(
            lambda: len(children_dirs(own_service.state_dir)) == BUSYBOX_POOL,
            what="the claimed child's dir gone from the pool, its refill's there",
        )


def test_busybox_launches_on_a_bridge_are_pooled(netns: Namespace, tmp_path: Path) -> None:
    """As the docker CLI's (the default network is a bridge): busybox's
    first bridge launch misses and adds busybox's own bridge template (not
    only the first image's to go on a bridge); the next ones get a pooled
    child with a parked veth, their address, /etc files and a fresh layer."""
    svc = NetService(netns, tmp_path / "state", extra_args=ARGS)
    svc.start()
    try:
        with svc.client() as c:
            wait_ready(c, READY)
            net = network(c, subnet="10.78.0.0/24")
            assert net_run(c, ["true"], network=net["name"])["exit_code"] == 0  # host's
            first = net_run(c, ["true"], network=net["name"], image="busybox")  # a miss
            assert first["exit_code"] == 0, first
            wait_ready(c, READY + HOST_POOL + BUSYBOX_POOL)
            for _ in range(2):
                hits_before = hits(c)
                command = "cat /etc/hosts; ip -o -4 addr show eth0; ls /; touch /mine"
                done = net_run(c, ["sh", "-c", command], network=net["name"], image="busybox")
                assert hits(c) == hits_before + 1
                assert done["exit_code"] == 0, done
                out = net_logs(c, done["id"])
                address = done["network"]["ip_address"]
                assert f"inet {address}/24" in out and f"{address}\t{done['hostname']}" in out
                assert "mine" not in out.split()
                wait_ready(c, READY + HOST_POOL + BUSYBOX_POOL)
    finally:
        svc.close()
