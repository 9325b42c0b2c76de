"""Runtime with a fake launcher: auto-removal and the waiters.

A container with ``auto_remove`` can exit, and be removed, before the
``start`` that ran it has answered (``true`` takes no time): the answer must
still be its record, not "no such container"; and waiters for its exit or
removal that come late must get its last record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runtime import NotFound, Runtime
from runtime.launcher import protocol
from runtime.launcher.client import REQUEST_TIMEOUT
from runtime.records import CREATED, ContainerRecord
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339
from tests.fakes.launcher import FakeLauncher

CID = "cd" * 32
R = TypeVar("R", bound=protocol.Reply)


class FastExitLauncher(FakeLauncher):
    """Answers ``start``, then reports the exit at once, and returns only once
    the service has auto-removed the container (the race, made certain)."""

    def __init__(self) -> None:
        super().__init__()
        self.runtime: Runtime | None = None
        self.sent: list[protocol.Request[Any]] = []

    def answer(self, message: protocol.Request[Any]) -> protocol.Launched:
        self.sent.append(message)
        assert isinstance(message, protocol.Start) and self.runtime is not None
        return protocol.Launched(pid=0, pid_start_time=None, started_at=now_rfc3339())

    def request(
        self,
        message: protocol.Request[R],
        timeout: float = REQUEST_TIMEOUT,
        on_reply: Callable[[R], None] | None = None,
    ) -> R:
        assert on_reply is not None
        reply = super().request(message, timeout, on_reply)  # answered and recorded
        assert isinstance(message, protocol.Start) and self.runtime is not None
        status = protocol.ExitStatus(exit_code=3, signal=None, finished_at=now_rfc3339())
        self.runtime.exits.on_event(
            protocol.ExitEvent(message.id, protocol.EntryKind.CONTAINER, status)
        )
        deadline = time.monotonic() + 10
        while self.runtime.records.get(message.id) is not None:
            assert time.monotonic() < deadline, "never auto-removed"
            time.sleep(0.005)
        return reply

    def notify(self, message: protocol.Request[Any]) -> None:
        self.sent.append(message)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    fake = FastExitLauncher()
    rt = Runtime.open(str(tmp_path / "state"), launcher=fake)
    fake.runtime = rt
    rt.records.insert(
        ContainerRecord(
            id=CID,
            name="quick",
            status=CREATED,
            spec=ContainerSpec(command=("true",), hostname=CID[:12], auto_remove=True),
            created_at=now_rfc3339(),
        )
    )
    (tmp_path / "state" / "containers" / CID).mkdir()
    yield rt
    # The removal goes on after the record is gone (the dir, the network's
    # side): let it end before the store closes under it.
    for thread in threading.enumerate():
        if thread.name == "auto-remove":
            thread.join(10)
    rt.records.close()


def test_start_answers_with_the_record_of_a_container_removed_meanwhile(
    runtime: Runtime,
) -> None:
    removed = runtime.removal_future(CID)
    record = runtime.start_container("quick")
    assert (record.id, record.status, record.exit_code) == (CID, "exited", 3)
    assert removed.result(10).exit_code == 3
    with pytest.raises(NotFound):
        runtime.get(CID)


def test_late_waiters_get_the_last_record(runtime: Runtime) -> None:
    runtime.start_container("quick")
    assert runtime.exit_future(CID).result(10).exit_code == 3
    assert runtime.removal_future(CID).result(10).exit_code == 3
    with pytest.raises(NotFound):  # by name: the name is free for a new container
        runtime.exit_future("quick")


def test_removal_waiters_wake_before_the_files_go_and_the_files_go(
    runtime: Runtime, tmp_path: Path
) -> None:
    # `docker run --rm` waits on condition=removed: the record's deletion is
    # the removal it waits for, not the unlinks of the state dir after it.
    directory = tmp_path / "state" / "containers" / CID
    seen: list[bool] = []
    removed = runtime.removal_future(CID)
    removed.add_done_callback(lambda _: seen.append(directory.exists()))
    runtime.start_container("quick")
    assert removed.result(10).exit_code == 3
    assert seen == [True]
    deadline = time.monotonic() + 10
    trash = tmp_path / "state" / "trash"  # moved there, unlinked on its thread (runtime/trash.py)
    while directory.exists() or (trash.exists() and any(trash.iterdir())):
        assert time.monotonic() < deadline, "the container's files stayed"
        time.sleep(0.005)
