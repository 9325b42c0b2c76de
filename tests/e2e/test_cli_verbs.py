"""The mydocker CLI's lifecycle and file verbs (cli/verbs.py, cli/files.py)
against a real service, with real containers."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.helpers import create, unique, wait_for_output

MYDOCKER = str(Path(sys.executable).parent / "mydocker")
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def mydocker(service: Service) -> Cli:
    env = {**os.environ, "MYDOCKER_HOST": service.url}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MYDOCKER, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    return call


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sleeper(client: httpx.Client) -> dict[str, object]:
    container = create(
        client, ["sh", "-c", "echo up; exec sleep 300"], image="busybox", name=unique("cv")
    )
    wait_for_output(client, str(container["id"]), "up")
    return container


def test_restart_rename_pause_unpause_update_top(mydocker: Cli, client: httpx.Client) -> None:
    container = _sleeper(client)
    cid = str(container["id"])
    assert _ok(mydocker("pause", cid)).strip() == cid
    assert client.get(f"/containers/{cid}").json()["paused"] is True
    _ok(mydocker("unpause", cid))
    new = unique("cv-new")
    _ok(mydocker("rename", cid, new))
    assert client.get(f"/containers/{new}").json()["id"] == cid
    _ok(mydocker("update", new, "--memory", "80m", "--pids-limit", "30"))
    limits = client.get(f"/containers/{cid}").json()["limits"]
    assert (limits["memory_bytes"], limits["pids"]) == (80 << 20, 30)
    top = _ok(mydocker("top", new)).splitlines()
    assert "PID" in top[0] and top[1].endswith("sleep 300")
    custom = _ok(mydocker("top", new, "-o", "pid,comm")).splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    before = client.get(f"/containers/{cid}").json()["pid"]
    _ok(mydocker("restart", "-t", "1", new))
    assert client.get(f"/containers/{cid}").json()["pid"] != before
    refused = mydocker("pause", "no-such-container")
    assert refused.returncode == 1 and "no such container" in refused.stderr
    client.delete(f"/containers/{cid}", params={"force": "true"})


def test_cp_diff_export(mydocker: Cli, client: httpx.Client, tmp_path: Path) -> None:
    container = _sleeper(client)
    cid = str(container["id"])
    (tmp_path / "in.txt").write_text("into\n")
    _ok(mydocker("cp", str(tmp_path / "in.txt"), f"{cid}:/tmp/"))
    _ok(mydocker("cp", str(tmp_path / "in.txt"), f"{cid}:/tmp/renamed.txt"))
    _ok(mydocker("cp", f"{cid}:/tmp/renamed.txt", str(tmp_path / "back.txt")))
    assert (tmp_path / "back.txt").read_text() == "into\n"
    (tmp_path / "dir").mkdir()
    _ok(mydocker("cp", f"{cid}:/tmp", str(tmp_path / "dir")))
    assert (tmp_path / "dir" / "tmp" / "in.txt").read_text() == "into\n"
    diff = _ok(mydocker("diff", cid)).splitlines()
    assert {"C /tmp", "A /tmp/in.txt", "A /tmp/renamed.txt"} <= set(diff)
    _ok(mydocker("export", cid, "-o", str(tmp_path / "root.tar")))
    with tarfile.open(tmp_path / "root.tar") as tar:
        assert "tmp/renamed.txt" in tar.getnames()
    both_local = mydocker("cp", str(tmp_path / "a"), str(tmp_path / "b"))
    assert both_local.returncode == 2 and "exactly one" in both_local.stderr
    client.delete(f"/containers/{cid}", params={"force": "true"})
