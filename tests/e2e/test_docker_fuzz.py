"""The Docker layer fuzzed against moby's own API description (issue 16).

``tests/data/moby-api/v1.47.yaml`` is ``api/docs/v1.47.yaml`` of the moby
repository (Apache-2.0, its LICENSE beside it), the version the Docker layer
announces.  Schemathesis generates requests for the endpoints we implement
that answer at once (``OPERATIONS``: not the ones that hold a connection
open, wait, attach, or start what was created), a bounded number each
(``MAX_EXAMPLES``, the examples and fuzzing phases: the coverage phase alone
makes thousands of create bodies); the checks: no 5xx, and every refusal in
Docker's ``{"message"}`` shape (tests/e2e/docker_fuzz_hooks.py), which also
points half the ids at a real container.  Created containers are never
started.  The documented response schemas are not checked: the
layer answers a subset of Docker's fields (docs/docker-compat.md).

A longer run: ``MYDOCKER_FUZZ_EXAMPLES=200 scripts/test tests/e2e/test_docker_fuzz.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT, Service
from tests.e2e.helpers import run_schemathesis

MAX_EXAMPLES = int(os.environ.get("MYDOCKER_FUZZ_EXAMPLES", "15"))
SCHEMA = ROOT / "tests" / "data" / "moby-api" / "v1.47.yaml"
#: operationIds of moby's description that the layer implements and that answer at once.
OPERATIONS = (
    "SystemPing",
    "SystemVersion",
    "SystemInfo",
    "SystemDataUsage",
    "SystemEvents",
    "ContainerList",
    "ContainerCreate",
    "ContainerInspect",
    "ContainerKill",
    "ContainerDelete",
    "ContainerPrune",
    "ImageList",
    "ImageInspect",
    "ExecInspect",
)


def test_the_docker_layer_answers_moby_api_description(
    own_service: Service, tmp_path: Path
) -> None:
    own_service.start()
    body = {"Image": "busybox", "Cmd": ["true"]}
    made = httpx.post(f"{own_service.url}/v1.47/containers/create", json=body, timeout=30)
    assert made.status_code == 201, made.text
    include = [arg for op in OPERATIONS for arg in ("--include-operation-id", op)]
    report = run_schemathesis(
        [
            str(SCHEMA),
            "--url",
            f"{own_service.url}/v1.47",
            *include,
            "--checks",
            "not_a_server_error,docker_error_shape",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--request-timeout",
            "30",
            "--workers",
            "1",
            "--continue-on-failure",
            "--seed",
            "16",
            "--phases",
            "examples,fuzzing",
        ],
        tmp_path,
        "tests.e2e.docker_fuzz_hooks",
        MYDOCKER_FUZZ_CONTAINER=made.json()["Id"],
    )
    assert "Tested: 14" in report, report[-3000:]
