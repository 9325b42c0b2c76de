"""The API's door against a real service: token, body cap, container cap,
unix socket, and the refusal to listen exposed without a token."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, Service, free_port

TOKEN = "e2e-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Routes outside the OpenAPI document: the docs, and the Docker Engine API subset.
EXTRA_ROUTES = [
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/_ping"),
    ("GET", "/version"),
    ("GET", "/v1.43/containers/json"),
    ("POST", "/v1.43/containers/create"),
    ("POST", "/containers/create"),
    ("POST", "/v1.43/images/create"),
    ("GET", "/v1.43/containers/x/attach"),
]


@pytest.fixture
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with a token file, --max-containers 2, a 64 KiB body cap
    and a 128 KiB upload cap."""
    base = tmp_path_factory.mktemp("guarded")
    token_file = base / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    svc = Service(
        state_dir=base / "state",
        port=free_port(),
        extra_args=[
            "--token-file",
            str(token_file),
            "--max-containers",
            "2",
            "--max-body",
            str(64 * 1024),
            "--max-upload",
            str(128 * 1024),
        ],
        env={"MYDOCKER_TOKEN": ""},
    )
    svc.start()
    yield svc
    svc.close()


def test_every_route_demands_the_token(guarded: Service) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30) as c:
        spec = c.get("/openapi.json", headers=AUTH).json()
        listed = [
            (method.upper(), path.replace("{ref}", "x"))
            for path, item in spec["paths"].items()
            for method in item
        ]
        assert ("POST", "/containers") in listed
        for method, path in listed + EXTRA_ROUTES:
            if path == "/health":
                continue
            for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}):
                r = c.request(method, path, headers=headers)
                assert r.status_code == 401, (method, path)
                assert r.json() == {"detail": "unauthorized", "message": "unauthorized"}
        # The wrong token created nothing.
        assert c.get("/containers", headers=AUTH).json() == []
        assert c.get("/health").status_code == 200


def test_oversize_body_is_413(guarded: Service) -> None:
    body = b'{"command": ["echo", "' + b"a" * (100 * 1024) + b'"]}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with httpx.Client(base_url=guarded.url, timeout=30) as c:
        headers = {**AUTH, "content-type": "application/json"}
        declared = c.post("/containers", content=body, headers=headers)
        assert declared.status_code == 413
        streamed = c.post("/containers", content=chunks(), headers=headers)  # chunked
        assert streamed.status_code == 413
        assert c.get("/containers", headers=AUTH).json() == []


def test_oversize_image_upload_is_413(guarded: Service) -> None:
    # A tar stream beyond --max-upload is cut off while it streams in.
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\0" * 8192

    with httpx.Client(base_url=guarded.url, timeout=30, headers=AUTH) as c:
        r = c.post(
            "/images",
            params={"name": "too-big"},
            content=chunks(),
            headers={"content-type": "application/x-tar"},
        )
        assert r.status_code == 413, r.text
        assert "too-big" not in [i["name"] for i in c.get("/images").json()]


def test_third_container_gets_429(guarded: Service) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30, headers=AUTH) as c:
        ids = []
        for _ in range(2):
            r = c.post("/containers", json={"command": ["sleep", "30"]})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        third = c.post("/containers", json={"command": ["sleep", "30"]})
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) >= 1
        assert "--max-containers" in third.json()["detail"]
        # Once one has gone, there is room again.
        assert c.delete(f"/containers/{ids[0]}", params={"force": "true"}).status_code == 204
        fourth = c.post("/containers", json={"command": ["true"]}, params={"wait": "true"})
        assert fourth.status_code == 201
        c.delete(f"/containers/{ids[1]}", params={"force": "true"})


def test_exposed_host_without_token_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MYDOCKER_TOKEN",)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr
    assert not (tmp_path / "state").exists()  # refused before doing anything


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def test_unix_socket_is_0600_and_serves(tmp_path: Path) -> None:
    path = tmp_path / "mydocker.sock"
    state = tmp_path / "state"
    with open(tmp_path / "service.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--uds", str(path), "--state-dir", str(state)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not _accepts(path):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://mydocker", timeout=30) as c:
            assert c.get("/health").status_code == 200
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            r = c.post("/containers", json={"command": ["true"]}, params={"wait": "true"})
            assert r.status_code == 201 and r.json()["exit_code"] == 0
    finally:
        proc.terminate()
        proc.wait(15)
        Service(state_dir=state, port=0).close()
    assert not path.exists()  # removed on the way out
