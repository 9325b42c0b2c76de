"""``Launches.begin`` (runtime/launches.py): a launch asked and answered later,
as the event loop's create does it (app/launching.py).  The fake launcher
keeps each request's future open; the test answers it, as the launcher
client's reader thread would: the reply recorded, then the gate left, then
the ``Launch`` answered."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runtime import InvalidState, Runtime, Unavailable, sparedirs
from runtime.launcher import protocol
from runtime.launcher.client import Disconnected
from runtime.sparedirs import SpareDirs
from runtime.spec import CreateRequest, Status
from runtime.timeutil import now_rfc3339
from tests.fakes.launcher import FakeLauncher

R = TypeVar("R", bound=protocol.Reply)


class Launcher(FakeLauncher):
    """Holds every ``create``; ``reply`` and ``fail`` answer the oldest."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[Future[Any], Callable[[Any], None] | None]] = []

    def answer(self, op: protocol.Request[Any]) -> protocol.Reply:
        if isinstance(op, protocol.List):
            return protocol.ListReply(())
        return protocol.Done()

    def submit(
        self, op: protocol.Request[R], on_reply: Callable[[R], None] | None = None
    ) -> Future[R]:
        if not isinstance(op, protocol.Create):
            return super().submit(op, on_reply)
        future: Future[R] = Future()
        self.held.append((future, on_reply))
        return future

    def reply(self) -> None:
        future, on_reply = self.held.pop(0)
        if not future.set_running_or_notify_cancel():
            return
        reply = protocol.Launched(pid=4242, pid_start_time=1, started_at=now_rfc3339())
        if on_reply is not None:
            on_reply(reply)
        future.set_result(reply)

    def fail(self, error: Exception) -> None:
        future, _ = self.held.pop(0)
        if future.set_running_or_notify_cancel():
            future.set_exception(error)


@pytest.fixture
def launcher() -> Launcher:
    return Launcher()


@pytest.fixture
def runtime(tmp_path: Path, launcher: Launcher) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), launcher=launcher)
    yield rt
    rt.records.close()


def _gate_is_free(rt: Runtime) -> bool:
    """Whether a reconcile could take the gate now (it waits for launches)."""
    gate = rt.admission.gate
    with gate._cond:
        return gate._shared == 0


def test_the_record_comes_first_and_the_gate_is_held_until_the_answer(
    runtime: Runtime, launcher: Launcher
) -> None:
    launch = runtime.begin_create(CreateRequest(("sleep", "9")))
    assert runtime.get(launch.container_id).status == Status.created  # record, then launch
    assert not launch.answered.done() and not _gate_is_free(runtime)
    launcher.reply()
    record = launch.answered.result(0)
    assert (record.status, record.pid) == (Status.running, 4242)
    assert runtime.get(launch.container_id).status == Status.running
    assert _gate_is_free(runtime)
    assert launch.exited is not None and not launch.exited.done()
    launch.exited.cancel()
    assert runtime.waiter_count() == 0  # a cancelled waiter is dropped


def test_a_create_takes_a_dir_made_ahead_and_makes_the_next_after_asking(
    runtime: Runtime, launcher: Launcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runtime/sparedirs.py: the first create makes its own dir; with the
    stock empty, it then makes one spare at once, once the launcher is
    asked, which the next one takes (the rest come at a pause: a minute
    away here; tests/unit/test_sparedirs.py)."""
    spares = runtime.layout.spares
    making = SpareDirs.make_one
    asked_first: list[bool] = []
    monkeypatch.setattr(sparedirs, "QUIET_SECONDS", 60.0)

    def make_one(self: SpareDirs) -> bool:
        if self.root == spares:  # not another test's runtime's filler
            asked_first.append(bool(launcher.held))
        return making(self)

    monkeypatch.setattr(SpareDirs, "make_one", make_one)
    first = runtime.begin_create(CreateRequest(("true",)))
    assert asked_first == [True]  # the launcher was asked before the spare was made
    made = os.listdir(spares)
    assert len(made) == 1
    second = runtime.begin_create(CreateRequest(("true",)))
    assert asked_first == [True, True]  # the stock was empty again: one more at once
    assert made[0] not in os.listdir(spares)  # taken: renamed into place
    cdir = runtime.layout.container_dir(second.container_id)
    assert sorted(os.listdir(cdir)) == ["stderr.log", "stdout.log"]
    assert os.path.isdir(runtime.layout.container_dir(first.container_id))
    for _ in range(2):
        launcher.reply()


def test_the_exit_is_watched_from_the_launch_on(runtime: Runtime, launcher: Launcher) -> None:
    launch = runtime.begin_create(CreateRequest(("true",)))
    launcher.reply()
    wire = {"event": "exit", "id": launch.container_id, "kind": "container", "exit_code": 3}
    runtime.exits.on_event(protocol.ExitEvent.from_wire({**wire, "finished_at": now_rfc3339()}))
    assert launch.exited is not None
    assert launch.exited.result(0).exit_code == 3


def test_a_refusal_ends_the_record_before_the_answer_fails(
    runtime: Runtime, launcher: Launcher
) -> None:
    launch = runtime.begin_create(CreateRequest(("true",)))
    launcher.fail(InvalidState("no"))
    with pytest.raises(InvalidState):
        launch.answered.result(0)
    record = runtime.get(launch.container_id)
    assert (record.status, record.error) == (Status.exited, "launch failed: no")
    assert launch.exited is not None and launch.exited.result(0).error == "launch failed: no"
    assert _gate_is_free(runtime)


def test_a_lost_launcher_leaves_the_record_to_the_reconcile(
    runtime: Runtime, launcher: Launcher
) -> None:
    launch = runtime.begin_create(CreateRequest(("true",)))
    launcher.fail(Disconnected("the launcher went away"))
    with pytest.raises(Unavailable, match=f"GET /containers/{launch.container_id} tells"):
        launch.answered.result(0)
    # Whether it runs, only the reconcile after the reconnect knows.
    assert runtime.get(launch.container_id).status == Status.created
    assert _gate_is_free(runtime)


def test_an_abandoned_launch_leaves_the_gate_and_drops_its_late_reply(
    runtime: Runtime, launcher: Launcher
) -> None:
    launch = runtime.begin_create(CreateRequest(("true",)))
    launch.abandon()
    assert launch.answered.cancelled() and _gate_is_free(runtime)
    assert launch.exited is not None and launch.exited.cancelled()
    launcher.reply()  # too late: not recorded, as the real client drops it
    assert runtime.get(launch.container_id).status == Status.created


def test_the_sync_create_still_answers_with_the_record(
    runtime: Runtime, launcher: Launcher
) -> None:
    def reply_once_asked() -> None:
        deadline = time.monotonic() + 10
        while not launcher.held and time.monotonic() < deadline:
            time.sleep(0.005)
        launcher.reply()

    replier = threading.Thread(target=reply_once_asked)
    replier.start()
    record = runtime.create(CreateRequest(("sleep", "9")))
    replier.join()
    assert (record.status, record.pid) == (Status.running, 4242)
    assert _gate_is_free(runtime) and runtime.waiter_count() == 0
