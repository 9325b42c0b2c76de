"""Restarts and crashes of the API and of the launcher (issue 8, docs/reliability.md).

Each test runs a service of its own and kills only the pids it started: the
service process it spawned and the launcher of its own state dir.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from runtime import pids
from runtime.layout import Layout
from runtime.procfs import process_state
from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, wait, wait_for_output

LOST = "exit status lost"


def _client(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=60)


def _gated(trigger: Path, code: int) -> list[str]:
    """A command that exits with ``code`` once ``trigger`` exists."""
    return ["sh", "-c", f"while [ ! -e {trigger} ]; do sleep 0.05; done; exit {code}"]


def _bind(path: Path) -> list[dict[str, str]]:
    """The host image hides the host's /tmp: bind the trigger's dir in."""
    return [{"type": "bind", "source": str(path), "target": str(path)}]


def _pidfile_path(service: Service, container_id: str) -> str:
    return Layout.of(str(service.state_dir)).pidfile_path(container_id)


def _pidfile(service: Service, container_id: str) -> tuple[int, int]:
    found = pids.read_pidfile(_pidfile_path(service, container_id))
    assert found is not None
    return found


def _dead(pid: int, start_time: int) -> bool:
    """Gone, or a zombie that init has still to reap: not running either way."""
    return not pids.same_process(pid, start_time) or process_state(pid) in {"Z", "X"}


def _eventually(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _crash_api(service: Service) -> None:
    """kill -9 of the service process (ours: we started it)."""
    assert service.process is not None
    service.process.kill()
    service.process.wait()
    service.process = None


def _kill9(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _eventually(lambda: process_state(pid) in {None, "Z"}, what=f"pid {pid} to die")


def test_api_kill9_then_restart_keeps_containers_and_their_real_exit_codes(
    own_service: Service, tmp_path: Path
) -> None:
    own_service.start()
    trigger = tmp_path / "go"
    with _client(own_service) as client:
        done = client.post("/containers?wait=true", json={"command": ["sh", "-c", "exit 7"]})
        assert done.json()["exit_code"] == 7
        exits_meanwhile = create(client, _gated(trigger, 42), mounts=_bind(tmp_path))
        keeps_running = create(client, ["sleep", "1000"])
        interactive = create(client, ["cat"], stdin=True)
    launcher = own_service.launcher_pid()
    _crash_api(own_service)

    # While the API is dead, one container exits: only the launcher knows how.
    trigger.touch()
    pid, start_time = _pidfile(own_service, str(exits_meanwhile["id"]))
    _eventually(lambda: _dead(pid, start_time), what="the gated container to exit")

    own_service.start()
    assert own_service.launcher_pid() == launcher  # the same launcher, never restarted
    with _client(own_service) as client:
        listed = {c["id"]: c for c in client.get("/containers").json()}
        assert len(listed) == 4
        assert [
            c["exit_code"] for c in listed.values() if c["command"] == ["sh", "-c", "exit 7"]
        ] == [7]
        meanwhile = listed[exits_meanwhile["id"]]
        assert (meanwhile["status"], meanwhile["exit_code"], meanwhile["error"]) == (
            "exited",
            42,
            None,
        )
        running = listed[keeps_running["id"]]
        assert running["status"] == "running" and running["pid"] == keeps_running["pid"]

        # Still running: waited on (a timeout answers with it running) ...
        assert wait(client, keeps_running["id"], timeout=0.3)["status"] == "running"
        # ... reached through the launcher (exec), attached to ...
        execd = client.post(
            f"/containers/{keeps_running['id']}/exec?wait=true", json={"command": ["true"]}
        )
        assert execd.status_code == 201 and execd.json()["exit_code"] == 0, execd.text
        url = own_service.url.replace("http", "ws") + f"/containers/{interactive['id']}/attach"
        with ws_connect(f"{url}?logs=false") as ws:
            ws.send(b"hello after a crash\n")
            echoed = b""
            while b"hello after a crash" not in echoed:
                frame = ws.recv(timeout=10)
                if isinstance(frame, bytes):
                    echoed += frame
        # ... and killed, with a real exit status.
        killed = client.post(f"/containers/{keeps_running['id']}/kill")
        assert killed.status_code == 200, killed.text
        final = wait(client, keeps_running["id"])
        assert (final["exit_code"], final["signal"]) == (137, "SIGKILL")
        client.post(f"/containers/{interactive['id']}/kill")
        assert wait(client, interactive["id"])["exit_code"] == 137


def test_launcher_kill9_buries_its_containers_and_kills_their_orphans(
    own_service: Service,
) -> None:
    own_service.start()
    with _client(own_service) as client:
        done = client.post("/containers?wait=true", json={"command": ["sh", "-c", "exit 3"]})
        running = create(client, ["sleep", "1000"])
        pid, start_time = _pidfile(own_service, str(running["id"]))
        old_launcher = own_service.launcher_pid()
        _kill9(old_launcher)

        # The API notices, reconnects to a new launcher and reconciles.
        lost = _eventually(
            lambda: (
                (c := client.get(f"/containers/{running['id']}").json())["status"] == "exited" and c
            ),
            what="the orphaned container to be marked lost",
        )
        assert lost["exit_code"] is None and lost["signal"] is None  # never a made-up 0
        assert lost["error"].startswith(LOST) and "was killed" in lost["error"]
        # The orphan (reparented to init when its launcher died) is killed.
        _eventually(lambda: _dead(pid, start_time), what="the orphan to die")
        assert client.get(f"/containers/{done.json()['id']}").json()["exit_code"] == 3
        # And the service goes on, with a new launcher.
        again = client.post("/containers?wait=true", json={"command": ["sh", "-c", "exit 5"]})
        assert again.status_code == 201 and again.json()["exit_code"] == 5
        assert own_service.launcher_pid() not in (None, old_launcher)


def test_api_and_launcher_kill9_like_a_reboot(own_service: Service, tmp_path: Path) -> None:
    """The pid files are on the launcher's tmpfs (runtime/rundir.py), which
    outlives both: the restarted API finds the orphan by its file, kills it
    and then removes the file; the logs, on the state dir's disk, stay."""
    own_service.start()
    trigger = tmp_path / "go"
    with _client(own_service) as client:
        exited = run(client, ["true"])
        running = create(client, ["sh", "-c", "echo before the crash; exec sleep 1000"])
        exits_unseen = create(client, _gated(trigger, 9), mounts=_bind(tmp_path))
        wait_for_output(client, running["id"], "before the crash")
    run_dir = Layout.of(str(own_service.state_dir)).run_dir
    assert os.path.ismount(run_dir)
    # Reaped: its pid file went (the record holds the rest).
    assert not os.path.exists(_pidfile_path(own_service, str(exited["id"])))
    _crash_api(own_service)
    _kill9(own_service.launcher_pid())
    # With both gone, this exit status is seen by nobody: it must not become a 0.
    trigger.touch()
    pid, start_time = _pidfile(own_service, str(running["id"]))
    assert not _dead(pid, start_time)  # orphaned, still running

    own_service.start()
    with _client(own_service) as client:
        for container in (running, exits_unseen):
            record = client.get(f"/containers/{container['id']}").json()
            assert record["status"] == "exited"
            assert record["exit_code"] is None and record["error"].startswith(LOST), record
        assert "before the crash" in logs(client, running["id"])
    _eventually(lambda: _dead(pid, start_time), what="the orphan to be killed at start-up")
    assert os.path.ismount(run_dir)  # the same tmpfs, found mounted
    for container in (running, exits_unseen):  # buried: their pid files went
        assert not os.path.exists(_pidfile_path(own_service, str(container["id"])))


def test_sigterm_leaves_containers_running_by_default_within_a_bounded_time(
    own_service: Service,
) -> None:
    own_service.extra_args = ["--shutdown-timeout", "2"]
    own_service.start()
    with _client(own_service) as client:
        running = create(client, ["sleep", "1000"])
    # An open follow and an open wait: shutdown must not hang on them.
    host, port = own_service.url.removeprefix("http://").split(":")
    requests = [
        f"GET /containers/{running['id']}/logs?follow=true HTTP/1.1\r\nHost: x\r\n\r\n",
        f"POST /containers/{running['id']}/wait HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    ]
    open_requests = []
    for request in requests:
        sock = socket.create_connection((host, int(port)))
        sock.sendall(request.encode())
        open_requests.append(sock)
    try:
        time.sleep(0.5)
        assert own_service.process is not None
        own_service.process.send_signal(signal.SIGTERM)
        # The open requests get --shutdown-timeout seconds, then are closed.
        assert own_service.process.wait(30) == -signal.SIGTERM  # on its own, not killed
        answers = []
        for sock in open_requests:  # the server closed them: reads reach EOF
            sock.settimeout(10)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            answers.append(answer)
        # The cut-off wait says why (503), never a 500.
        assert b" 500 " not in answers[1].split(b"\r\n", 1)[0], answers[1]
        if answers[1]:
            assert answers[1].startswith(b"HTTP/1.1 503 "), answers[1]
    finally:
        for sock in open_requests:
            sock.close()
    own_service.process = None
    pid, start_time = _pidfile(own_service, str(running["id"]))
    assert pids.same_process(pid, start_time)  # still running under the launcher
    own_service.start()
    with _client(own_service) as client:
        assert client.get(f"/containers/{running['id']}").json()["status"] == "running"
        client.post(f"/containers/{running['id']}/kill")
        assert wait(client, running["id"])["exit_code"] == 137


@pytest.mark.parametrize("shutdown_timeout", ["1"])
def test_sigterm_with_stop_containers_on_exit_stops_them_first(
    own_service: Service, shutdown_timeout: str
) -> None:
    own_service.extra_args = ["--stop-containers-on-exit", "--shutdown-timeout", shutdown_timeout]
    own_service.start()
    with _client(own_service) as client:
        plain = create(client, ["sleep", "1000"])
        trapping = create(
            client, ["sh", "-c", "trap 'exit 9' TERM; echo ready; while :; do sleep 0.1; done"]
        )
        wait_for_output(client, trapping["id"], "ready")
    assert own_service.process is not None
    own_service.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the SIGTERM once it has shut down cleanly.
    assert own_service.process.wait(30) == -signal.SIGTERM
    own_service.process = None
    own_service.extra_args = []
    own_service.start()
    with _client(own_service) as client:
        # No SIGTERM handler as PID 1: SIGKILL at once (pid_namespaces(7)).
        first = client.get(f"/containers/{plain['id']}").json()
        assert (first["status"], first["exit_code"], first["signal"]) == ("exited", 137, "SIGKILL")
        second = client.get(f"/containers/{trapping['id']}").json()
        assert (second["status"], second["exit_code"]) == ("exited", 9)


def test_a_docker_exec_created_before_a_restart_starts_after_it(own_service: Service) -> None:
    """Docker's exec create is a record (status created) in the store, so it
    outlives the API: started and inspected by a service started since."""
    own_service.start()
    with _client(own_service) as client:
        container = create(client, ["sleep", "1000"])
        body = {"Cmd": ["sh", "-c", "echo from-exec; exit 7"], "AttachStdout": True}
        made = client.post(f"/v1.47/containers/{container['id']}/exec", json=body)
        assert made.status_code == 201, made.text
        exec_id = made.json()["Id"]
        assert client.get(f"/execs/{exec_id}").json()["status"] == "created"
    own_service.stop()  # SIGTERM: containers keep running by default
    own_service.start()
    with _client(own_service) as client:
        before = client.get(f"/v1.47/exec/{exec_id}/json")
        assert before.status_code == 200, before.text
        assert (before.json()["Running"], before.json()["ExitCode"]) == (False, None)
        started = client.post(f"/v1.47/exec/{exec_id}/start", json={"Detach": True})
        assert started.status_code == 200, started.text

        def exited() -> dict[str, object] | None:
            got: dict[str, object] = client.get(f"/v1.47/exec/{exec_id}/json").json()
            return got if got["ExitCode"] is not None else None

        inspected = _eventually(exited, what="the exec to exit")
        assert inspected["ContainerID"] == container["id"]
        assert inspected["ExitCode"] == 7 and inspected["Running"] is False
        again = client.post(f"/v1.47/exec/{exec_id}/start", json={"Detach": True})
        assert again.status_code == 409
        output = client.get(f"/execs/{exec_id}/logs")
        assert output.text == "from-exec\n"
        client.post(f"/containers/{container['id']}/kill")
