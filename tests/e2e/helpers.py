"""Small helpers the e2e tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import time
import uuid
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
