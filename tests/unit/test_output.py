"""runtime/output.py: a follower's pause ends at the exit, not a poll later."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from runtime import logs
from runtime.errors import NotFound, Unavailable
from runtime.layout import Layout
from runtime.output import Output, Target
from runtime.records import EXITED, RUNNING, ContainerRecord, RecordStore
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339

CID = "ab" * 32


class FakeExits:
    """Hands out futures and records what was asked; ``fail`` makes it refuse."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.futures: list[Future[Any]] = []
        self.fail: Exception | None = None
        self.done_with: object | None = None

    def _future(self, kind: str, ref: str) -> Future[Any]:
        self.asked.append((kind, ref))
        if self.fail is not None:
            raise self.fail
        future: Future[Any] = Future()
        if self.done_with is not None:
            future.set_result(self.done_with)
        self.futures.append(future)
        return future

    def exit_future(self, ref: str) -> Future[Any]:
        return self._future("container", ref)

    def exec_exit_future(self, ref: str) -> Future[Any]:
        return self._future("exec", ref)


def _target(kind: str = "container", current: Any = lambda: None) -> Target:
    spec = ContainerSpec(command=("true",), hostname="follower")
    return Target(kind, CID, spec, "/nonexistent", current)


@pytest.fixture
def exits() -> FakeExits:
    return FakeExits()


@pytest.fixture
def output(tmp_path: Path, exits: FakeExits) -> Output:
    return Output(Layout.of(str(tmp_path)), None, exits)  # type: ignore[arg-type]


def test_a_pause_returns_when_the_exit_comes(output: Output, exits: FakeExits) -> None:
    pause = output.pause(_target())
    threading.Timer(0.05, lambda: exits.futures[0].set_result("exited")).start()
    started = time.monotonic()
    pause(30.0)
    assert time.monotonic() - started < 10.0  # woken, not the 30 s poll
    assert exits.asked == [("container", CID)]


def test_a_pause_drops_its_waiter_when_it_times_out(output: Output, exits: FakeExits) -> None:
    output.pause(_target())(0.01)
    assert exits.futures[0].cancelled()  # Exits forgets a cancelled waiter at once


def test_an_exec_pauses_on_its_own_exit(output: Output, exits: FakeExits) -> None:
    exits.done_with = "exited"
    output.pause(_target("exec"))(30.0)
    assert exits.asked == [("exec", CID)]


@pytest.mark.parametrize("failure", [NotFound("container", CID), Unavailable("shutting down")])
def test_without_a_future_a_pause_sleeps_the_whole_poll(
    output: Output, exits: FakeExits, failure: Exception
) -> None:
    # Gone (auto-removed long ago) or the service closing: no busy loop.
    exits.fail = failure
    started = time.monotonic()
    output.pause(_target())(0.05)
    assert time.monotonic() - started >= 0.05


def test_a_failed_future_sleeps_the_whole_poll(output: Output, exits: FakeExits) -> None:
    failed: Future[Any] = Future()
    failed.set_exception(Unavailable("the service is shutting down"))
    exits.exit_future = lambda ref: failed  # type: ignore[method-assign]
    pause = output.pause(_target())
    started = time.monotonic()
    pause(0.05)
    assert time.monotonic() - started >= 0.05


def test_without_exits_a_pause_is_a_sleep(tmp_path: Path) -> None:
    plain = Output(Layout.of(str(tmp_path)), None)  # type: ignore[arg-type]
    assert plain.pause(_target()) is time.sleep


def test_a_follower_ends_at_the_exit_not_a_poll_later(
    tmp_path: Path, exits: FakeExits, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll of 30 s: only the exit's wake-up can end this follow in time.
    monkeypatch.setattr(logs, "FOLLOW_POLL_SECONDS", 30.0)
    layout = Layout.of(str(tmp_path))
    records = RecordStore(str(tmp_path / "db"))
    spec = ContainerSpec(command=("true",), hostname="follower")
    records.insert(ContainerRecord(CID, "follower", RUNNING, spec, now_rfc3339()))
    (tmp_path / "containers" / CID).mkdir(parents=True)
    (tmp_path / "containers" / CID / "stdout.log").write_bytes(b"hello\n")
    output = Output(layout, records, exits)
    chunks = output.chunks(output.target("container", CID), ["stdout"], None, True, False, True)

    def exit_now() -> None:
        with (tmp_path / "containers" / CID / "stdout.log").open("ab") as f:
            f.write(b"bye\n")
        records.update(CID, status=EXITED, exit_code=0)
        exits.futures[0].set_result("exited")

    assert next(chunks) == ("stdout", b"hello\n")
    threading.Timer(0.05, exit_now).start()
    started = time.monotonic()
    rest = [chunk for _, chunk in chunks if chunk]
    assert rest == [b"bye\n"]
    assert time.monotonic() - started < 10.0
    records.close()
