"""Runtime with a fake launcher: auto-removal and the waiters.

A container with ``auto_remove`` can exit, and be removed, before the
``start`` that ran it has answered (``true`` takes no time): the answer must
still be its record, not "no such container"; and waiters for its exit or
removal that come late must get its last record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import NotFound, Runtime
from runtime.launcher import protocol
from runtime.records import CREATED, ContainerRecord
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339

CID = "cd" * 32


class FastExitLauncher:
    """Answers ``start``, then reports the exit at once, and returns only once
    the service has auto-removed the container (the race, made certain)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.sent: list[protocol.Request[Any]] = []

    def request(
        self,
        message: protocol.Request[Any],
        on_reply: Callable[[protocol.Launched], None] | None = None,
        **_: Any,
    ) -> protocol.Launched:
        self.sent.append(message)
        assert isinstance(message, protocol.Start) and self.runtime is not None
        reply = protocol.Launched(pid=0, pid_start_time=None, started_at=now_rfc3339())
        assert on_reply is not None
        on_reply(reply)
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

    def close(self) -> None:
        pass


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
    rt.records.close()


def test_start_answers_with_the_record_of_a_container_removed_meanwhile(
    runtime: Runtime,
) -> None:
    removed = runtime.removal_future(CID)
    record = runtime.start_container("quick")
    assert (record.id, record.status, record.exit_code) == (CID, "exited", 3)
    assert removed.result(1).exit_code == 3
    with pytest.raises(NotFound):
        runtime.get(CID)


def test_late_waiters_get_the_last_record(runtime: Runtime) -> None:
    runtime.start_container("quick")
    assert runtime.exit_future(CID).result(1).exit_code == 3
    assert runtime.removal_future(CID).result(1).exit_code == 3
    with pytest.raises(NotFound):  # by name: the name is free for a new container
        runtime.exit_future("quick")
