"""``POST /containers`` awaited on the event loop (app/launching.py) against a
real service: many waits at once hold no thread, a client that leaves
mid-wait leaves no waiter.  A launcher killed under waiting creates:
tests/e2e/test_faults.py.

Each test runs a service of its own and kills only what it started.
"""

from __future__ import annotations

import json
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.conftest import Service
from tests.e2e.helpers import eventually, wait

WAITERS = re.compile(r"^mydocker_exit_waiters (\S+)$", re.M)
NOT_MADE_UP = ("exit status lost", "launch lost", "launch failed")


def _client(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=60)


def _waiters(client: httpx.Client) -> int:
    found = WAITERS.search(client.get("/metrics").text)
    assert found is not None
    return int(float(found.group(1)))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_many_waiting_creates_hold_no_thread_and_each_gets_its_exit(
    own_service: Service,
) -> None:
    own_service.start()
    with _client(own_service) as client:
        assert client.post("/containers?wait=true", json={"command": ["true"]}).status_code == 201
        baseline = _threads(own_service.pid)
        shared = own_service.state_dir.parent / "shared"
        shared.mkdir()
        count = 64  # more than FastAPI's worker threads (40)
        # Each waits for the file (its /tmp is its own: a bind), then exits
        # with its own code.
        script = "while [ ! -e /shared/release ]; do sleep 0.05; done; exit $1"
        bind = {"type": "bind", "source": str(shared), "target": "/shared", "read_only": True}
        answers: dict[int, httpx.Response] = {}

        def launch(i: int) -> None:
            with _client(own_service) as c:
                body = {"command": ["sh", "-c", script, "sh", str(i)], "mounts": [bind]}
                answers[i] = c.post("/containers?wait=true", json=body)

        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(launch, i) for i in range(count)]
            eventually(lambda: _waiters(client) == count, what="every create to be waiting")
            # All waiting, none holding a worker thread: the service answers
            # others at once, and has not grown a thread per waiter.
            assert client.get("/containers", timeout=10).status_code == 200
            assert _threads(own_service.pid) <= baseline + 40
            (shared / "release").touch()
            for future in futures:
                future.result()
        assert {i: (r.status_code, r.json()["exit_code"]) for i, r in answers.items()} == {
            i: (201, i) for i in range(count)
        }
        assert all(r.json()["status"] == "exited" for r in answers.values())
        assert _waiters(client) == 0


def test_a_client_that_leaves_mid_wait_leaves_no_waiter_and_the_container_runs(
    own_service: Service,
) -> None:
    own_service.start()
    host, port = own_service.url.removeprefix("http://").split(":")
    with _client(own_service) as client:
        sockets = []
        for i in range(10):
            body = json.dumps({"command": ["sleep", "1000"], "name": f"left-{i}"}).encode()
            s = socket.create_connection((host, int(port)))
            s.sendall(
                b"POST /containers?wait=true HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            sockets.append(s)
        eventually(lambda: _waiters(client) == 10, what="the creates to be waiting")
        for s in sockets:
            s.close()
        eventually(lambda: _waiters(client) == 0, what="the departed clients' waiters to go")
        # The containers were launched all the same, and end normally.
        listed = client.get("/containers", params={"status": "running"}).json()
        assert sorted(c["name"] for c in listed) == sorted(f"left-{i}" for i in range(10))
        for record in listed:
            client.post(f"/containers/{record['id']}/kill")
            assert wait(client, record["id"])["exit_code"] == 137
