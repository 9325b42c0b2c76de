"""The lifecycle verbs over the native API, with real containers
(runtime/lifecycle.py, runtime/freezer.py, app/routes/lifecycle.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from runtime import procfs
from tests.e2e.conftest import logs
from tests.e2e.helpers import create, unique, wait, wait_for_output

IMAGE = "busybox"


def _sleeper(client: httpx.Client, **spec: Any) -> dict[str, Any]:
    container = create(
        client, ["sh", "-c", "echo up; exec sleep 300"], image=IMAGE, name=unique("lc"), **spec
    )
    wait_for_output(client, container["id"], "up")
    return container


def _state(pid: int) -> str | None:
    return procfs.process_state(pid)


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    path = procfs.cgroups(pid)
    mounts = procfs.cgroup_mounts()
    hierarchy = next(h for h in path if controller in h.split(","))
    with open(f"{mounts[hierarchy]}{path[hierarchy]}/{name}") as f:
        return f.read().strip()


def _event_actions(client: httpx.Client, container_id: str) -> list[str]:
    params = {"container": container_id, "since": "0", "until": f"{time.time():.3f}"}
    got = client.get("/events", params=params)
    assert got.status_code == 200, got.text
    return [json.loads(line)["action"] for line in got.text.splitlines() if line]


def test_restart_runs_the_container_again_with_its_layer_and_logs(client: httpx.Client) -> None:
    container = create(
        client,
        [
            "sh",
            "-c",
            "echo run; cat /marker 2>/dev/null; echo kept > /marker; echo marked; exec sleep 300",
        ],
        image=IMAGE,
    )
    # Not "run": under load the restart's kill could come before the marker was written.
    wait_for_output(client, container["id"], "marked")
    restarted = client.post(f"/containers/{container['id']}/restart", params={"timeout": 1})
    assert restarted.status_code == 200, restarted.text
    body = restarted.json()
    assert (body["id"], body["status"]) == (container["id"], "running")
    assert body["pid"] != container["pid"]
    wait_for_output(client, container["id"], "kept")
    assert logs(client, container["id"]).count("run\n") == 2
    # An exited container starts again too.
    client.post(f"/containers/{container['id']}/kill")
    assert wait(client, container["id"])["status"] == "exited"
    again = client.post(f"/containers/{container['id']}/restart").json()
    assert (again["status"], again["exit_code"]) == ("running", None)
    assert "restart" in _event_actions(client, container["id"])
    client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_restart_of_an_unknown_container_is_a_404(client: httpx.Client) -> None:
    assert client.post("/containers/no-such-thing/restart").status_code == 404


def test_rename_takes_a_free_name_and_refuses_a_taken_one(client: httpx.Client) -> None:
    first, second = _sleeper(client), _sleeper(client)
    new = unique("renamed")
    renamed = client.post(f"/containers/{first['id']}/rename", params={"name": new})
    assert renamed.status_code == 200, renamed.text
    assert client.get(f"/containers/{new}").json()["id"] == first["id"]
    assert client.get(f"/containers/{first['name']}").status_code == 404
    clash = client.post(f"/containers/{second['id']}/rename", params={"name": new})
    assert clash.status_code == 409
    assert "already in use" in clash.json()["detail"]
    bad = client.post(f"/containers/{second['id']}/rename", params={"name": "../x"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "name"]
    assert "rename" in _event_actions(client, first["id"])
    for c in (first, second):
        client.delete(f"/containers/{c['id']}", params={"force": "true"})


def test_pause_freezes_every_process_and_unpause_thaws(client: httpx.Client) -> None:
    container = create(
        client,
        ["sh", "-c", "while true; do date +%s%N > /tmp/tick; sleep 0.01; done"],
        image=IMAGE,
    )
    cid = container["id"]
    # A failed assertion must not leave a frozen container behind: force removal
    # thaws it first (test_force_remove_of_a_paused_container).
    try:
        paused = client.post(f"/containers/{cid}/pause")
        assert paused.status_code == 200, paused.text
        assert (paused.json()["status"], paused.json()["paused"]) == ("running", True)
        assert _state(container["pid"]) in ("D", "S")  # frozen tasks sleep in the refrigerator
        assert _cgroup_file(container["pid"], "freezer", "freezer.state") == "FROZEN"
        again = client.post(f"/containers/{cid}/pause")
        assert again.status_code == 409
        assert "already paused" in again.json()["detail"]
        refused = client.post(f"/containers/{cid}/exec", json={"command": ["true"]})
        assert refused.status_code == 409
        assert "is paused, unpause the container before exec" in refused.json()["detail"]
        unpaused = client.post(f"/containers/{cid}/unpause")
        assert (unpaused.status_code, unpaused.json()["paused"]) == (200, False)
        assert _cgroup_file(container["pid"], "freezer", "freezer.state") == "THAWED"
        assert client.post(f"/containers/{cid}/unpause").status_code == 409
        actions = _event_actions(client, cid)
        assert actions.index("pause") < actions.index("unpause")
    finally:
        client.delete(f"/containers/{cid}", params={"force": "true"})


def test_pause_of_a_stopped_or_unknown_container_is_refused(client: httpx.Client) -> None:
    container = create(client, ["true"], image=IMAGE)
    wait(client, container["id"])
    stopped = client.post(f"/containers/{container['id']}/pause")
    assert stopped.status_code == 409
    assert "not running" in stopped.json()["detail"]
    assert client.post("/containers/no-such-thing/pause").status_code == 404
    client.delete(f"/containers/{container['id']}")


def test_kill_and_stop_of_a_paused_container_work(client: httpx.Client) -> None:
    for verb in ("kill", "stop"):
        container = _sleeper(client)
        assert client.post(f"/containers/{container['id']}/pause").status_code == 200
        started = time.monotonic()
        done = client.post(f"/containers/{container['id']}/{verb}", params={"timeout": 5})
        assert done.status_code == 200, done.text
        assert wait(client, container["id"], timeout=10)["status"] == "exited"
        assert time.monotonic() - started < 9
        assert client.get(f"/containers/{container['id']}").json()["paused"] is False
        client.delete(f"/containers/{container['id']}")


def test_update_changes_the_running_containers_cgroup(client: httpx.Client) -> None:
    container = _sleeper(client, limits={"memory_bytes": 64 << 20, "pids": 50})
    pid = container["pid"]
    got = client.post(
        f"/containers/{container['id']}/update",
        json={"memory_bytes": 96 << 20, "pids": 20, "cpus": 0.5},
    )
    assert got.status_code == 200, got.text
    limits = got.json()["limits"]
    assert (limits["memory_bytes"], limits["pids"], limits["cpus"]) == (96 << 20, 20, 0.5)
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert _cgroup_file(pid, "pids", "pids.max") == "20"
    assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    lower = client.post(f"/containers/{container['id']}/update", json={"memory_bytes": 32 << 20})
    assert lower.status_code == 200, lower.text
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(32 << 20)
    bad = client.post(f"/containers/{container['id']}/update", json={"pids": 0})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "pids"]
    unknown = client.post(f"/containers/{container['id']}/update", json={"memory": 1})
    assert unknown.status_code == 422
    client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_top_lists_the_containers_processes(client: httpx.Client) -> None:
    container = create(client, ["sh", "-c", "sleep 301 & echo up; exec sleep 300"], image=IMAGE)
    wait_for_output(client, container["id"], "up")
    top = client.get(f"/containers/{container['id']}/top")
    assert top.status_code == 200, top.text
    body = top.json()
    assert "PID" in body["titles"] and body["titles"][-1] == "CMD"
    commands = sorted(row[-1] for row in body["processes"])
    assert commands == ["sleep 300", "sleep 301"]
    pid_column = body["titles"].index("PID")
    assert str(container["pid"]) in [row[pid_column] for row in body["processes"]]
    custom = client.get(f"/containers/{container['id']}/top", params={"ps_args": "-o pid,comm"})
    assert custom.json()["titles"] == ["PID", "COMMAND"]
    assert len(custom.json()["processes"]) == 2
    no_pid = client.get(f"/containers/{container['id']}/top", params={"ps_args": "-o comm"})
    assert no_pid.status_code == 422
    assert "PID" in no_pid.text
    client.delete(f"/containers/{container['id']}", params={"force": "true"})
    exited = create(client, ["true"], image=IMAGE)
    wait(client, exited["id"])
    assert client.get(f"/containers/{exited['id']}/top").status_code == 409
    client.delete(f"/containers/{exited['id']}")


def test_force_remove_of_a_paused_container(client: httpx.Client) -> None:
    container = _sleeper(client)
    assert client.post(f"/containers/{container['id']}/pause").status_code == 200
    removed = client.delete(f"/containers/{container['id']}", params={"force": "true"})
    assert removed.status_code == 204, removed.text
    assert client.get(f"/containers/{container['id']}").status_code == 404
    assert procfs.process_state(container["pid"]) in (None, "Z")


def test_restart_of_an_auto_remove_container_keeps_it(client: httpx.Client) -> None:
    container = _sleeper(client, auto_remove=True)
    restarted = client.post(f"/containers/{container['id']}/restart", params={"timeout": 1})
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["status"] == "running"
    time.sleep(0.5)  # an auto-remove would have run by now
    assert client.get(f"/containers/{container['id']}").status_code == 200
    client.post(f"/containers/{container['id']}/kill")
    deadline = time.monotonic() + 10
    while client.get(f"/containers/{container['id']}").status_code != 404:
        assert time.monotonic() < deadline, "an auto-remove container outlived its exit"
        time.sleep(0.05)
