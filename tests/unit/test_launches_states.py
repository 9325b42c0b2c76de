"""The runtime's own state rules for start, stop and exec (runtime/launches.py,
runtime/signalling.py), over a fake launcher: what the Docker API's 304s and
409s come from (app/errors.py maps them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidState, NotModified, Runtime
from runtime.launcher import protocol
from runtime.spec import CreateRequest, ExecRequest, ExecSpec, Status
from runtime.timeutil import now_rfc3339


class Launcher:
    """Answers every launch as one that ran; remembers the ops it was sent."""

    def __init__(self) -> None:
        self.sent: list[protocol.Request[Any]] = []

    def request(
        self,
        op: protocol.Request[Any],
        on_reply: Callable[[Any], None] | None = None,
        **_: Any,
    ) -> Any:
        self.sent.append(op)
        if isinstance(op, protocol.List):
            return protocol.ListReply(())
        reply: Any = protocol.Launched(pid=4242, pid_start_time=1, started_at=now_rfc3339())
        if not isinstance(op, protocol.Create | protocol.Start | protocol.Exec):
            reply = protocol.Done()
        if on_reply is not None:
            on_reply(reply)
        return reply

    def notify(self, op: protocol.Request[Any]) -> None:
        self.sent.append(op)

    def close(self) -> None:
        pass


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), launcher=Launcher())  # type: ignore[arg-type]
    yield rt
    rt.records.close()


def _exit(rt: Runtime, container_id: str) -> None:
    wire = {"event": "exit", "id": container_id, "kind": "container", "exit_code": 0}
    rt.exits.on_event(protocol.ExitEvent.from_wire({**wire, "finished_at": now_rfc3339()}))


def test_start_of_a_running_container_is_not_modified(runtime: Runtime) -> None:
    created = runtime.create(CreateRequest(("sleep", "9"), start=False))
    assert created.status == Status.created
    assert runtime.start_container(created.id).status == Status.running
    with pytest.raises(NotModified):
        runtime.start_container(created.id)


def test_start_of_an_exited_container_is_a_conflict_not_a_304(runtime: Runtime) -> None:
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    with pytest.raises(InvalidState) as caught:
        runtime.start_container(record.id)
    assert not isinstance(caught.value, NotModified)
    assert "does not restart" in str(caught.value)


def test_stop_only_running_refuses_what_is_not_running(runtime: Runtime) -> None:
    created = runtime.create(CreateRequest(("sleep", "9"), start=False))
    with pytest.raises(NotModified):
        runtime.stop(created.id, only_running=True)
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    with pytest.raises(NotModified):
        runtime.stop(record.id, only_running=True)
    assert runtime.stop(record.id).status == Status.exited  # the native API's stop: as it is


def test_an_exec_is_recorded_then_started_once(runtime: Runtime) -> None:
    container = runtime.create(CreateRequest(("sleep", "9")))
    request = ExecRequest(ExecSpec(command=("true",)))
    created = runtime.create_exec(container.id, request)
    assert runtime.get_exec(created.id).status == Status.created
    assert [e.id for e in runtime.list_execs(container.id)] == [created.id]
    assert runtime.check_exec_start(created.id) == created
    started = runtime.start_exec(created.id, (24, 80))
    assert (started.status, started.pid) == (Status.running, 4242)
    sent = runtime.launcher.sent[-1]  # type: ignore[attr-defined]
    assert isinstance(sent, protocol.Exec) and sent.tty_size == (24, 80)
    with pytest.raises(InvalidState, match="already started"):
        runtime.start_exec(created.id)


def test_an_exec_needs_a_running_container_to_be_made_and_to_start(runtime: Runtime) -> None:
    container = runtime.create(CreateRequest(("sleep", "9")))
    request = ExecRequest(ExecSpec(command=("true",)))
    created = runtime.create_exec(container.id, request)
    _exit(runtime, container.id)
    with pytest.raises(InvalidState, match="not running"):
        runtime.start_exec(created.id)
    with pytest.raises(InvalidState, match="not running"):
        runtime.create_exec(container.id, request)
