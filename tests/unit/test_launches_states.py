"""The runtime's own state rules for start, stop and exec (runtime/launches.py,
runtime/signalling.py), over a fake launcher: what the Docker API's 304s and
409s come from (app/errors.py maps them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidState, NotModified, Runtime
from runtime.launcher import protocol
from runtime.spec import CreateRequest, ExecRequest, ExecSpec, Status
from runtime.timeutil import now_rfc3339
from tests.fakes.launcher import FakeLauncher


class Launcher(FakeLauncher):
    """Answers every launch as one that ran; remembers the ops it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[protocol.Request[Any]] = []

    def answer(self, op: protocol.Request[Any]) -> protocol.Reply:
        self.sent.append(op)
        if isinstance(op, protocol.List):
            return protocol.ListReply(())
        if isinstance(op, protocol.Create | protocol.Start | protocol.Exec):
            return protocol.Launched(pid=4242, pid_start_time=1, started_at=now_rfc3339())
        return protocol.Done()

    def notify(self, op: protocol.Request[Any]) -> None:
        self.sent.append(op)


@pytest.fixture
def launcher() -> Launcher:
    return Launcher()


@pytest.fixture
def runtime(tmp_path: Path, launcher: Launcher) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), launcher=launcher)
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


def test_start_of_an_exited_container_launches_it_again(
    runtime: Runtime, launcher: Launcher
) -> None:
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    assert runtime.get(record.id).exit_code == 0
    again = runtime.start_container(record.id)
    assert (again.id, again.status, again.exit_code, again.finished_at) == (
        record.id,
        Status.running,
        None,
        None,
    )
    creates = [op for op in launcher.sent if isinstance(op, protocol.Create)]
    assert [op.id for op in creates] == [record.id, record.id]
    assert creates[1].start


def test_relaunch_of_a_container_that_is_not_exited_is_not_modified(runtime: Runtime) -> None:
    record = runtime.create(CreateRequest(("sleep", "9")))
    with pytest.raises(NotModified):
        runtime.launches.relaunch(record.id)


def test_stop_only_running_refuses_what_is_not_running(runtime: Runtime) -> None:
    created = runtime.create(CreateRequest(("sleep", "9"), start=False))
    with pytest.raises(NotModified):
        runtime.stop(created.id, only_running=True)
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    with pytest.raises(NotModified):
        runtime.stop(record.id, only_running=True)
    assert runtime.stop(record.id).status == Status.exited  # the native API's stop: as it is


def test_an_exec_is_recorded_then_started_once(runtime: Runtime, launcher: Launcher) -> None:
    container = runtime.create(CreateRequest(("sleep", "9")))
    request = ExecRequest(ExecSpec(command=("true",)))
    created = runtime.create_exec(container.id, request)
    assert runtime.get_exec(created.id).status == Status.created
    assert [e.id for e in runtime.list_execs(container.id)] == [created.id]
    assert runtime.check_exec_start(created.id) == created
    started = runtime.start_exec(created.id, (24, 80))
    assert (started.status, started.pid) == (Status.running, 4242)
    sent = launcher.sent[-1]
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


def test_next_exit_of_an_exited_container_waits_for_its_next_run(runtime: Runtime) -> None:
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    assert runtime.exit_future(record.id).done()
    following = runtime.next_exit_future(record.id)
    assert not following.done()
    runtime.start_container(record.id)
    assert not following.done()
    _exit(runtime, record.id)
    assert following.result(1).status == Status.exited


def test_removal_ends_a_wait_for_a_next_exit(runtime: Runtime) -> None:
    record = runtime.create(CreateRequest(("true",)))
    _exit(runtime, record.id)
    following = runtime.next_exit_future(record.id)
    runtime.remove(record.id)
    assert following.result(1).id == record.id
    assert runtime.waiter_count() == 0
