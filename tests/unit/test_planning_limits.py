"""Runtime.create with limits: defaults merged in, the CPU count checked,
results from the exit event stored; over a fake launcher."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidArgument, Runtime
from runtime.launcher import protocol
from runtime.spec import CreateRequest, InvalidField, Limits, to_dict
from runtime.timeutil import now_rfc3339


class RecordingLauncher:
    """Answers ``create`` as a launch that ran; remembers what it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def request(
        self,
        op: protocol.Request[Any],
        on_reply: Callable[[protocol.Launched], None] | None = None,
        **_: Any,
    ) -> protocol.Launched:
        self.sent.append(op.to_wire())  # recorded as sent, to assert on
        reply = protocol.Launched(pid=4242, pid_start_time=1, started_at=now_rfc3339())
        if on_reply is not None:
            on_reply(reply)
        return reply

    def notify(self, op: protocol.Request[Any]) -> None:
        self.sent.append(op.to_wire())

    def close(self) -> None:
        pass


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., tuple[Runtime, RecordingLauncher]]]:
    made: list[Runtime] = []

    def make(**kwargs: Any) -> tuple[Runtime, RecordingLauncher]:
        fake = RecordingLauncher()
        rt = Runtime.open(str(tmp_path / f"state{len(made)}"), launcher=fake, **kwargs)
        made.append(rt)
        return rt, fake

    yield make
    for rt in made:
        rt.records.close()


def test_request_limits_over_service_defaults_reach_the_launcher(make_runtime) -> None:
    rt, fake = make_runtime(default_limits=Limits(memory_bytes=256 << 20, timeout_seconds=60))
    record = rt.create(CreateRequest(("true",), limits=Limits(timeout_seconds=5, pids=10)))
    sent = fake.sent[0]["spec"]["limits"]
    assert sent["memory_bytes"] == 256 << 20
    assert (sent["timeout_seconds"], sent["pids"]) == (5, 10)
    assert to_dict(record.spec.limits) == sent  # the record says what applied


def test_no_limits_and_no_defaults_is_unlimited(make_runtime) -> None:
    rt, fake = make_runtime()
    rt.create(CreateRequest(("true",)))
    assert all(v is None for v in fake.sent[0]["spec"]["limits"].values())


def test_more_cpus_than_the_machine_has_is_refused(make_runtime) -> None:
    rt, fake = make_runtime()
    too_many = len(os.sched_getaffinity(0)) + 1
    with pytest.raises(InvalidArgument) as info:
        rt.create(CreateRequest(("true",), limits=Limits(cpus=too_many)))
    assert info.value.field == "limits.cpus"
    assert fake.sent == []


def test_out_of_range_limit_names_the_field(make_runtime) -> None:
    rt, fake = make_runtime()
    # The request cannot even be made: Limits checks its bounds (InvalidField),
    # which app/commands.py reports as InvalidArgument.
    with pytest.raises(InvalidField) as info:
        rt.create(CreateRequest(("true",), limits=Limits(nofile=1)))
    assert info.value.field == "limits.nofile"
    assert fake.sent == []


def test_the_exit_event_results_are_stored(make_runtime) -> None:
    rt, _ = make_runtime()
    record = rt.create(CreateRequest(("true",), limits=Limits(memory_bytes=64 << 20)))
    results = {
        "oom_killed": True,
        "timed_out": False,
        "output_truncated": False,
        "cpu_seconds": 0.1,
        "memory_peak_bytes": 64 << 20,
        "wall_seconds": 0.2,
    }
    event = {"event": "exit", "id": record.id, "kind": "container", "exit_code": 137}
    wire = {**event, "signal": "SIGKILL", "finished_at": now_rfc3339(), "results": results}
    rt.exits.on_event(protocol.ExitEvent.from_wire(wire))
    stored = rt.get(record.id)
    assert stored.status == "exited"
    assert dict(stored.results) == results
