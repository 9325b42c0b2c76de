"""Small helpers the e2e tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import logs


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create(client: httpx.Client, command: list[str], **spec: object) -> dict[str, Any]:
    response = client.post("/containers", json={"command": command, **spec})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def wait(client: httpx.Client, ref: str, timeout: float | None = None) -> dict[str, Any]:
    params = {} if timeout is None else {"timeout": timeout}
    response = client.post(f"/containers/{ref}/wait", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_for_output(client: httpx.Client, ref: str, text: str, timeout: float = 30) -> None:
    """Poll the logs until ``text`` shows up (the container is ready)."""
    deadline = time.monotonic() + timeout
    while text not in logs(client, str(ref)):
        assert time.monotonic() < deadline, f"{text!r} never appeared in the logs of {ref}"
        time.sleep(0.02)


def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """``check()``'s first truthy value, polled every 50 ms for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def run_schemathesis(
    args: list[str], cwd: Path, hooks: str, prefix: Sequence[str] = (), **env: str
) -> str:
    """``st run ARGS`` with our hooks module on the path (after ``prefix``:
    nsenter into the service's namespace); the report (stdout and stderr),
    asserted to be a clean run.  Its cache of past crashes goes to ``cwd``:
    every run starts afresh."""
    st = Path(sys.executable).with_name("st")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [*prefix, str(st), "run", *args],
        cwd=cwd,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": hooks,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
            "NO_COLOR": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    assert "Runtime Error" not in report and "passed" in report
    return report
