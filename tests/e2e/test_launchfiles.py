"""A launch's files over HTTP (docs/performance.md, "A launch's files"):
the container's dir made ahead, the pid file on the launcher's tmpfs for as
long as the container runs, the host image's shared mount point, and a
removal that moves the dir aside at once."""

from __future__ import annotations

import os

import httpx

from runtime import pids
from runtime.layout import Layout
from runtime.procfs import process_start_time
from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, eventually, wait, wait_for_output


def test_a_running_containers_pid_file_is_on_the_tmpfs_and_goes_at_its_exit(
    client: httpx.Client, service: Service
) -> None:
    layout = Layout.of(str(service.state_dir))
    container = create(client, ["sh", "-c", "echo up; exec sleep 60"])
    wait_for_output(client, container["id"], "up")
    assert os.path.ismount(layout.run_dir)
    path = layout.pidfile_path(container["id"])
    pid = container["pid"]
    assert pids.read_pidfile(path) == (pid, process_start_time(pid))
    assert not os.path.exists(layout.old_pidfile_path(container["id"]))
    client.post(f"/containers/{container['id']}/kill")
    assert wait(client, container["id"])["exit_code"] == 137
    eventually(lambda: not os.path.exists(path), what="the pid file to go after the reap")


def test_a_host_containers_dir_holds_its_logs_and_no_mount_point(
    client: httpx.Client, service: Service
) -> None:
    layout = Layout.of(str(service.state_dir))
    first = run(client, ["sh", "-c", "echo out; echo err >&2"])
    second = run(client, ["true"])
    assert logs(client, first["id"]) == "out\nerr\n"
    for container in (first, second):
        cdir = layout.container_dir(container["id"])
        assert {"stdout.log", "stderr.log"} <= set(os.listdir(cdir))
        assert "layer" not in os.listdir(cdir)  # the root was mounted on the shared one
    # Made by the first cold launch (a pooled one mounts on the pool's):
    # each child mounts there in its own namespace, so the host sees it empty.
    shared = os.path.join(layout.host_layer, "root")
    assert not os.path.exists(shared) or os.listdir(shared) == []
    # The next creates' dirs are made ahead, each with its empty logs.
    spares = os.listdir(layout.spares)
    assert spares
    for name in spares:
        files = os.listdir(os.path.join(layout.spares, name))
        assert all(os.path.getsize(os.path.join(layout.spares, name, f)) == 0 for f in files)


def test_a_removal_moves_the_dir_aside_and_empties_it_soon(
    client: httpx.Client, service: Service
) -> None:
    layout = Layout.of(str(service.state_dir))
    container = run(client, ["sh", "-c", "echo bye"])
    cdir = layout.container_dir(container["id"])
    with open(os.path.join(cdir, "stdout.log")) as reader:  # a reader of its log
        assert client.delete(f"/containers/{container['id']}").status_code == 204
        assert not os.path.exists(cdir)  # gone when DELETE answers
        assert os.path.isdir(layout.trash)  # moved there, not removed in place
        eventually(lambda: os.listdir(layout.trash) == [], what="the trash to be emptied")
        assert reader.read() == "bye\n"  # still readable through the open file
    assert client.get(f"/containers/{container['id']}").status_code == 404
