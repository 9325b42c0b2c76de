"""Fault injection (issue 8): a full disk, a launcher killed mid-launch, clients
that vanish mid-follow and mid-wait, a database locked by another process.

Each test runs a service of its own and kills only what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from runtime import pids
from runtime.layout import Layout
from runtime.procfs import process_state
from tests.e2e.conftest import Service, free_port
from tests.e2e.helpers import create, eventually, wait, wait_for_output

NOT_MADE_UP = ("exit status lost", "launch lost", "launch failed")


def _client(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=60)


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


# -- a full disk -------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount_point)],
        check=True,
    )
    yield mount_point
    # Lazy: a container of the test may still hold a log file open.
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(path: Path) -> None:
    """Write zeros until ENOSPC."""
    block = b"\0" * (1 << 16)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    assert os.statvfs(path.parent).f_bavail == 0


def test_a_full_state_dir_refuses_launches_keeps_serving_and_loses_nothing(
    small_tmpfs: Path,
) -> None:
    service = Service(state_dir=small_tmpfs / "state", port=free_port())
    service.start()
    try:
        with _client(service) as client:
            before = client.post(
                "/containers?wait=true", json={"command": ["sh", "-c", "echo kept; exit 6"]}
            ).json()
            # Writes its output until a write fails, then says so with its exit code.
            writer = create(
                client,
                ["sh", "-c", "while head -c 4096 /dev/zero; do sleep 0.01; done; exit 7"],
            )
            running = create(client, ["sleep", "1000"])
            filler = small_tmpfs / "filler"
            _fill(filler)

            refused = client.post("/containers", json={"command": ["true"]})
            assert refused.status_code == 507, refused.text
            assert "state dir is full" in refused.json()["detail"]
            # Reads go on, and what was recorded is all there.
            assert client.get("/health").status_code == 200
            listed = {c["id"]: c for c in client.get("/containers").json()}
            assert len(listed) == 3
            assert listed[before["id"]]["exit_code"] == 6
            assert client.get(f"/containers/{before['id']}/logs").text == "kept\n"
            # A container's own writes fail with ENOSPC, and it sees it.
            assert wait(client, writer["id"], timeout=30)["exit_code"] == 7
            # Its exit may have been recorded into the space held back for
            # that (runtime/reserve.py), which is not room to launch in.
            refused = client.post("/containers", json={"command": ["true"]})
            assert refused.status_code == 507, refused.text
            # An exit while the disk is full is recorded (or retried until it is).
            client.post(f"/containers/{running['id']}/kill")
            filler.unlink()  # room again: a pending record gets written now
            assert wait(client, running["id"], timeout=30)["exit_code"] == 137
            again = client.post("/containers?wait=true", json={"command": ["true"]})
            assert again.status_code == 201 and again.json()["exit_code"] == 0
    finally:
        service.close()


# -- the launcher killed mid-launch -------------------------------------------
def _wait_for_created(service: Service, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with _client(service) as client:
        while time.monotonic() < deadline:
            created = client.get("/containers", params={"status": "created"}).json()
            if len(created) >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"fewer than {count} containers were recorded in {timeout} s")


@pytest.mark.parametrize("query", ["", "?wait=true"])
def test_launcher_killed_mid_launch_leaves_no_half_record_and_no_orphan(
    own_service: Service, query: str
) -> None:
    """With ``wait=true`` too: the create awaited on the event loop
    (app/launching.py) gets the launch's failure, or its exit."""
    own_service.start()
    with _client(own_service) as client:
        client.post("/containers?wait=true", json={"command": ["true"]})
    launcher = own_service.launcher_pid()
    assert launcher is not None
    # Frozen, the launcher has these requests on its socket and answers none:
    # they are in flight when it dies.
    os.kill(launcher, signal.SIGSTOP)
    answers: list[httpx.Response] = []

    def launch(i: int) -> None:
        with _client(own_service) as c:
            body = {"command": ["sh", "-c", f"exit {i}"]}
            answers.append(c.post(f"/containers{query}", json=body))

    with ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(launch, i) for i in range(1, 9)]
        # Recorded first, then sent to the launcher: once all eight are
        # recorded as created, their requests are on its socket or about to
        # be.  (A fixed sleep was not enough on a loaded machine: the API had
        # not reached the launcher when it died, and nothing was in flight.)
        _wait_for_created(own_service, 8)
        time.sleep(0.2)
        # SIGKILL ends a stopped process too (signal(7)); no SIGCONT after it,
        # which could find the launcher already reaped (ProcessLookupError) or
        # its pid taken by another process.
        os.kill(launcher, signal.SIGKILL)
        # And a storm of launches across the new launcher's start.
        futures += [pool.submit(launch, i) for i in range(9, 40)]
        for future in futures:
            future.result()
    assert {r.status_code for r in answers} <= {201, 503}, [r.text for r in answers]
    assert any(r.status_code == 503 for r in answers)
    for r in answers:
        if r.status_code == 503:
            assert "went away while launching container" in r.json()["detail"]
        elif query:  # waited: exited, with its own code or a loss said as such
            data = r.json()
            assert data["status"] == "exited", data
            if data["exit_code"] is None:
                assert str(data["error"]).startswith(NOT_MADE_UP), data
            else:
                assert data["exit_code"] == int(data["command"][-1].split()[-1]), data

    with _client(own_service) as client:

        def settled() -> list[dict[str, object]] | None:
            listed = client.get("/containers").json()
            return None if any(c["status"] != "exited" for c in listed) else listed

        listed = eventually(settled, what="every container to be accounted for")
    assert len(listed) == 1 + 39  # every launch has its record
    layout = Layout.of(str(own_service.state_dir))
    for record in listed:
        command = record["command"]
        expected = int(command[-1].split()[-1]) if command[0] == "sh" else 0
        if record["exit_code"] is None:
            assert str(record["error"]).startswith(NOT_MADE_UP), record
        else:
            assert record["exit_code"] == expected, record  # never a made-up status
        found = pids.read_pidfile(layout.pidfile_path(str(record["id"])))
        if found is not None:
            pid, start_time = found
            assert not pids.same_process(pid, start_time) or process_state(pid) == "Z"
    # Every one exited: reaped or buried, so no pid file is left (runtime/rundir.py).
    assert os.listdir(layout.run_dir) == []


# -- clients that go away ------------------------------------------------------
def _abandon(url: str, method: str, path: str, count: int) -> None:
    """Open ``count`` requests, let them start, then close the sockets."""
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        socks.append(s)
    time.sleep(1.0)
    for s in socks:
        s.close()


def test_clients_that_vanish_mid_follow_and_mid_wait_leave_nothing_behind(
    own_service: Service,
) -> None:
    own_service.start()
    assert own_service.process is not None
    pid = own_service.process.pid
    with _client(own_service) as client:
        silent = create(client, ["sleep", "1000"])
        baseline = _threads(pid)
        # More followers than the worker thread pool has threads (40): an
        # idle follower must hold none, or this GET could never be served.
        follow = f"/containers/{silent['id']}/logs?follow=true"
        host, port = own_service.url.removeprefix("http://").split(":")
        followers = []
        for _ in range(60):
            s = socket.create_connection((host, int(port)))
            s.sendall(f"GET {follow} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            followers.append(s)
        time.sleep(1.0)
        assert client.get("/containers", timeout=10).status_code == 200
        for s in followers:
            s.close()
        _abandon(own_service.url, "POST", f"/containers/{silent['id']}/wait", 60)

        # The service stays healthy: no worker thread is stuck with a departed
        # client (40 plain requests at once still get the whole pool), and
        # the thread count stays bounded by the pool's size.
        with ThreadPoolExecutor(40) as pool:
            statuses = list(
                pool.map(lambda _: client.get("/containers", timeout=15).status_code, range(40))
            )
        assert statuses == [200] * 40
        assert client.get("/health").status_code == 200
        assert _threads(pid) <= baseline + 40 + 4
        chatty = create(client, ["sh", "-c", "echo one; sleep 0.3; echo two"])
        with client.stream("GET", f"/containers/{chatty['id']}/logs?follow=true") as response:
            assert response.read() == b"one\ntwo\n"
        client.post(f"/containers/{silent['id']}/kill")
        assert wait(client, silent["id"])["exit_code"] == 137


# -- a locked database -----------------------------------------------------------
def test_sqlite_locked_by_another_process_for_a_while_delays_requests(
    own_service: Service,
) -> None:
    own_service.start()
    with _client(own_service) as client:
        running = create(client, ["sh", "-c", "echo ready; sleep 1000"])
        wait_for_output(client, running["id"], "ready")
        locker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "db.execute('BEGIN IMMEDIATE')\n"
                "print('locked', flush=True)\n"
                "time.sleep(2)\n"
                "db.execute('COMMIT')\n",
                str(own_service.state_dir / "mydocker.db"),
            ],
            stdout=subprocess.PIPE,
        )
        try:
            assert locker.stdout is not None and locker.stdout.readline() == b"locked\n"
            started = time.monotonic()
            launched = client.post("/containers?wait=true", json={"command": ["true"]})
            assert launched.status_code == 201, launched.text
            assert launched.json()["exit_code"] == 0
            # It could not have been written before the other process let go.
            assert locker.wait(10) == 0
            assert time.monotonic() - started >= 1.0
            client.post(f"/containers/{running['id']}/kill")
            assert wait(client, running["id"])["exit_code"] == 137
        finally:
            locker.kill()
            locker.wait()
            if locker.stdout is not None:
                locker.stdout.close()


def test_the_locker_really_blocks_writers(tmp_path: Path) -> None:
    """What the test above relies on: BEGIN IMMEDIATE in another connection
    makes a writer wait (and fail, past its timeout)."""
    path = str(tmp_path / "db")
    a = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    b = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    try:
        a.execute("PRAGMA journal_mode=WAL")
        a.execute("CREATE TABLE t (x)")
        a.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            b.execute("INSERT INTO t VALUES (1)")
        a.execute("COMMIT")
        b.execute("INSERT INTO t VALUES (1)")
    finally:
        a.close()
        b.close()
