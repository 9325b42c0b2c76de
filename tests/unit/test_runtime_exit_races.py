"""Runtime with a fake launcher: the races between a
container's exit and the requests that act on it.

The launcher forgets a container once the API has recorded its exit (the
``ack``), so a kill that read the record as "running" just before the exit
can reach the launcher after it has forgotten the container.  The caller
must then see "not running" (409), or for stop and forced delete, success;
never "no such container" (404) for a container that is right there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidState, NotFound, Runtime
from runtime.launcher import protocol
from runtime.records import EXITED, RUNNING, ContainerRecord
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339

CID = "ab" * 32


class RacingLauncher:
    """Answers ``kill`` as the real launcher does just after an exit was
    acknowledged: the exit event is delivered first, then ``not_found``."""

    def __init__(self) -> None:
        self.on_event: Callable[[protocol.ExitEvent], None] | None = None
        self.sent: list[protocol.Request[Any]] = []

    def request(self, message: protocol.Request[Any], **_: Any) -> protocol.Reply:
        self.sent.append(message)
        if isinstance(message, protocol.Kill):
            assert self.on_event is not None
            status = protocol.ExitStatus(exit_code=0, signal=None, finished_at=now_rfc3339())
            self.on_event(protocol.ExitEvent(message.id, protocol.EntryKind.CONTAINER, status))
            raise NotFound("container", message.id)
        raise AssertionError(f"unexpected request {message}")

    def notify(self, message: protocol.Request[Any]) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    fake = RacingLauncher()
    rt = Runtime.open(str(tmp_path / "state"), launcher=fake)
    fake.on_event = rt.exits.on_event
    rt.records.insert(
        ContainerRecord(
            id=CID,
            name="web",
            status=RUNNING,
            spec=ContainerSpec(command=("sleep", "60"), hostname=CID[:12]),
            created_at=now_rfc3339(),
            pid=None,
        )
    )
    (tmp_path / "state" / "containers" / CID).mkdir()
    yield rt
    rt.records.close()


def test_kill_racing_the_exit_is_not_running_not_not_found(runtime: Runtime) -> None:
    with pytest.raises(InvalidState, match="not running"):
        runtime.kill("web", "SIGTERM")
    assert runtime.get("web").status == EXITED


def test_stop_racing_the_exit_answers_with_the_exited_container(runtime: Runtime) -> None:
    record = runtime.stop("web", timeout=1)
    assert (record.status, record.exit_code) == (EXITED, 0)


def test_forced_delete_racing_the_exit_removes_the_container(runtime: Runtime) -> None:
    runtime.remove("web", force=True)
    with pytest.raises(NotFound):
        runtime.get("web")
