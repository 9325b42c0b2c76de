"""Traces end to end: an in-process app (``create_app``) with the real
``Runtime``, its real launcher and real containers, exporting to an
``InMemorySpanExporter`` through ``Tracing.to`` (app/tracing.py).

In-process rather than a service process: the spans are read straight from
the exporter, with no collector to run; the runtime, the launcher and the
containers are the real ones, only the exporter differs from production.
The unset case runs in a subprocess of its own, whose modules it inspects.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.config import Settings
from app.main import create_app
from app.tracing import LAUNCH_SPAN, Tracing
from runtime.launcher import messages

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["launcher.clone", "launcher.join", "child.setup"]


def _traced_app(
    tmp_path: Path, pool_size: int
) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    # In the host's network namespace: a Docker create without a network
    # gets none here, not Docker's bridge (no bridge on the host).
    settings = Settings(
        state_dir=str(tmp_path / "state"), pool_size=pool_size, docker_network="none"
    )
    with TestClient(create_app(settings, tracing=Tracing.to(exporter))) as client:
        yield client, exporter


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    """Without a pool: every create clones (the cold path's steps)."""
    yield from _traced_app(tmp_path, pool_size=0)


@pytest.fixture
def traced_pooled(tmp_path: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    yield from _traced_app(tmp_path, pool_size=2)


def attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """A finished span's attributes (the SDK types them as optional)."""
    assert span.attributes is not None, span.name
    return span.attributes


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _ancestors(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _check_launch(
    spans: tuple[ReadableSpan, ...],
    http_name: str,
    container_id: str,
    steps: list[str],
    op: str = "create",
) -> ReadableSpan:
    """The launch span under the request's server span, its steps under it,
    in order, back to back, inside it; returns the launch span."""
    [launch] = [
        s
        for s in _by_name(spans, LAUNCH_SPAN)
        if attributes(s)["container.id"] == container_id
        and attributes(s)["mydocker.launch.op"] == op
    ]
    [http] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == http_name]
    assert http in _ancestors(launch, spans)
    assert launch.context.trace_id == http.context.trace_id
    children = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == launch.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    assert [c.name for c in children] == steps
    assert http.start_time and http.end_time and launch.start_time and launch.end_time
    assert http.start_time <= launch.start_time <= launch.end_time <= http.end_time
    for child in children:
        assert child.start_time is not None and child.end_time is not None
        assert launch.start_time <= child.start_time <= child.end_time <= launch.end_time
        assert attributes(child)["container.id"] == container_id
    for before, after in zip(children, children[1:], strict=False):
        assert before.end_time == after.start_time  # back to back: the same stamp
    total = sum((c.end_time or 0) - (c.start_time or 0) for c in children)
    assert 0 < total <= launch.end_time - launch.start_time
    return launch


def test_a_launch_is_a_span_with_the_launchers_steps(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    # wait=true: its exit is recorded and acked, so the launcher ends with the app
    response = client.post("/containers", params={"wait": "true"}, json={"command": ["true"]})
    assert response.status_code == 201, response.text
    body = response.json()
    launch = _check_launch(exporter.get_finished_spans(), "POST /containers", body["id"], STEPS)
    assert attributes(launch)["container.image.name"] == body["image"]
    assert attributes(launch)["mydocker.launch.op"] == "create"
    [join] = _by_name(exporter.get_finished_spans(), "launcher.join")
    assert [e.name for e in join.events] == ["go byte sent", "cgroup joined"]


def test_a_pooled_launch_is_a_release_then_the_childs_setup(
    traced_pooled: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced_pooled
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the pool fills while the launcher is idle
        pool = runtime.pool_state()
        if pool is not None and pool.ready:
            break
        time.sleep(0.05)
    response = client.post("/containers", params={"wait": "true"}, json={"command": ["true"]})
    assert response.status_code == 201, response.text
    spans = exporter.get_finished_spans()
    steps = ["launcher.release", "child.setup"]
    _check_launch(spans, "POST /containers", response.json()["id"], steps)
    [release] = _by_name(spans, "launcher.release")
    assert [e.name for e in release.events] == ["go byte sent"]
    assert runtime.pool_state().hits == 1


def test_docker_create_then_start_are_two_launches(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    created = client.post("/v1.43/containers/create", json={"Image": "busybox", "Cmd": ["true"]})
    assert created.status_code == 201, created.text
    container_id = created.json()["Id"]
    started = client.post(f"/v1.43/containers/{container_id}/start")
    assert started.status_code == 204, started.text
    assert client.post(f"/v1.43/containers/{container_id}/wait").json()["StatusCode"] == 0
    spans = exporter.get_finished_spans()
    create = _check_launch(
        spans, "POST /containers/create", container_id, ["launcher.clone", "launcher.join"]
    )
    start = _check_launch(
        spans,
        "POST /containers/{ref}/start",
        container_id,
        ["launcher.release", "child.setup"],
        "start",
    )
    assert attributes(create)["mydocker.launch.op"] == "create"
    assert attributes(start)["mydocker.launch.op"] == "start"
    assert attributes(create)["container.image.name"] == "busybox"
    assert attributes(start)["container.image.name"] == "busybox"


def test_a_reply_without_a_timeline_still_launches(
    traced: tuple[TestClient, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API side as it reads a launcher from before the field: the reply's
    ``timeline`` key is gone before decoding."""
    client, exporter = traced
    decode = messages.Launched.from_wire

    def as_old_launcher(cls: type[messages.Launched], message: Any) -> messages.Launched:
        return decode({k: v for k, v in message.items() if k != "timeline"})

    monkeypatch.setattr(messages.Launched, "from_wire", classmethod(as_old_launcher))
    response = client.post("/containers", params={"wait": "true"}, json={"command": ["true"]})
    assert response.status_code == 201, response.text
    assert response.json()["exit_code"] == 0
    spans = exporter.get_finished_spans()
    [launch] = _by_name(spans, LAUNCH_SPAN)
    assert attributes(launch)["mydocker.launch.timeline"] is False
    assert not [s for s in spans if s.name in STEPS]


UNSET = """
import os, sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from app.config import Settings
from app.main import create_app

os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
app = create_app(Settings(state_dir=sys.argv[1], docker_network="none"))
with TestClient(app) as client:
    response = client.post("/containers", params={"wait": "true"}, json={"command": ["true"]})
    assert response.status_code == 201, response.text
    assert response.json()["exit_code"] == 0
loaded = ("opentelemetry.sdk", "opentelemetry.exporter")
sdk = sorted(m for m in sys.modules if m.startswith(loaded))
assert not sdk, sdk
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
print("no sdk")
"""


def test_unset_means_no_sdk_no_exporter_no_spans(tmp_path: Path) -> None:
    """Without OTEL_EXPORTER_OTLP_ENDPOINT a launch imports neither the SDK
    nor an exporter, and the global provider stays the API's no-op proxy."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(UNSET), str(tmp_path / "state")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no sdk" in done.stdout
