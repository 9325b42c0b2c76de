"""Runtime.kill_many over a fake launcher: what it selects, how it batches
the launcher requests, what it reports, and that nothing is sent when the
request is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import AmbiguousReference, InvalidArgument, NotFound, Runtime, Selector, signalling
from runtime.launcher import protocol
from runtime.launcher.client import UnknownOp
from runtime.records import CREATED, EXITED, RUNNING, ContainerRecord
from runtime.spec import ContainerSpec
from runtime.timeutil import now_rfc3339


class KillLauncher:
    """Answers ``kill_many`` (or only the single ``kill``, as a launcher
    from before it); ``gone`` ids have exited on the launcher's side."""

    def __init__(self, bulk: bool = True) -> None:
        self.bulk = bulk
        self.gone: set[str] = set()
        self.sent: list[dict[str, Any]] = []

    def request(self, op: protocol.Request[Any], **_: Any) -> protocol.Reply:
        message = op.to_wire()  # recorded as sent, to assert on
        self.sent.append(message)
        if isinstance(op, protocol.KillMany):
            if not self.bulk:
                raise UnknownOp("unknown op 'kill_many'")
            return protocol.KillManyReply(
                killed=tuple(i for i in op.ids if i not in self.gone),
                not_running=tuple(i for i in op.ids if i in self.gone),
            )
        if isinstance(op, protocol.Kill) and not self.bulk:
            if op.id in self.gone:
                raise NotFound("container", op.id)
            return protocol.Done()
        raise AssertionError(f"unexpected request {message}")

    def close(self) -> None:
        pass


def cid(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def launcher() -> KillLauncher:
    return KillLauncher()


@pytest.fixture
def runtime(tmp_path: Path, launcher: KillLauncher) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), launcher=launcher)
    yield rt
    rt.records.close()


def add(rt: Runtime, n: int, status: str = RUNNING, **labels: str) -> str:
    rt.records.insert(
        ContainerRecord(
            id=cid(n),
            name=f"job-{n}",
            status=status,
            spec=ContainerSpec(command=("sleep", "60"), hostname="h", labels=labels),
            created_at=now_rfc3339(),
        )
    )
    return cid(n)


def sent(rt: Runtime) -> list[dict[str, Any]]:
    return rt.launcher.sent  # type: ignore[attr-defined,no-any-return]


def test_a_label_picks_only_the_running_containers_that_carry_it(runtime: Runtime) -> None:
    ones = {add(runtime, n, a="1") for n in range(1, 6)}
    add(runtime, 6, a="2")
    add(runtime, 7, status=EXITED, a="1")  # not reported: filters only look at running ones
    add(runtime, 8)
    result = runtime.kill_many(Selector(labels=("a=1",)))
    assert set(result.killed) == ones and len(result.killed) == 5
    assert (result.not_running, result.not_found, result.signal) == ((), (), 9)
    [message] = sent(runtime)
    assert message["op"] == "kill_many" and set(message["ids"]) == ones and message["signal"] == 9


def test_ids_report_not_running_and_not_found_and_count_once(runtime: Runtime) -> None:
    running, created = add(runtime, 1), add(runtime, 2, status=CREATED)
    exited = add(runtime, 3, status=EXITED)
    result = runtime.kill_many(
        Selector(refs=(running, "job-1", created, exited, "nosuch")), "SIGTERM"
    )
    assert result.killed == (running,)  # by id and by name: signalled once
    assert set(result.not_running) == {created, exited}
    assert result.not_found == ("nosuch",)
    assert result.signal == 15


def test_ids_and_filters_combine(runtime: Runtime) -> None:
    a, b = add(runtime, 1, a="1"), add(runtime, 2, a="2")
    result = runtime.kill_many(Selector(refs=(a, b), labels=("a=1",)))
    assert result.killed == (a,) and result.not_running == ()


def test_a_container_that_exits_meanwhile_is_not_running(
    runtime: Runtime, launcher: KillLauncher
) -> None:
    a, b = add(runtime, 1), add(runtime, 2)
    launcher.gone = {b}
    result = runtime.kill_many(Selector(all=True))
    assert (result.killed, result.not_running) == ((a,), (b,))


def test_the_launcher_gets_bounded_batches(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signalling, "KILL_BATCH", 3)
    ids = {add(runtime, n, a="1") for n in range(1, 8)}
    result = runtime.kill_many(Selector(labels=("a",)))
    assert set(result.killed) == ids
    assert [len(m["ids"]) for m in sent(runtime)] == [3, 3, 1]


@pytest.mark.parametrize("launcher", [KillLauncher(bulk=False)])
def test_an_older_launcher_gets_one_kill_each(runtime: Runtime, launcher: KillLauncher) -> None:
    a, b = add(runtime, 1), add(runtime, 2)
    launcher.gone = {b}
    result = runtime.kill_many(Selector(name_prefix="job-"))
    assert (result.killed, result.not_running) == ((a,), (b,))
    assert [m["op"] for m in sent(runtime)] == ["kill_many", "kill", "kill"]


def test_an_empty_selection_sends_nothing(runtime: Runtime) -> None:
    add(runtime, 1, a="1")
    result = runtime.kill_many(Selector(labels=("a=2",)))
    assert (result.killed, result.not_running, result.not_found) == ((), (), ())
    assert sent(runtime) == []


@pytest.mark.parametrize(
    ("selector", "signal", "field"),
    [
        (Selector(all=True), "SIGNOPE", "signal"),
        (Selector(all=True), 0, "signal"),
        (Selector(), "SIGKILL", "all"),
    ],
)
def test_a_refused_request_signals_nothing(
    runtime: Runtime, selector: Selector, signal: str | int, field: str
) -> None:
    add(runtime, 1)
    with pytest.raises(InvalidArgument) as caught:
        runtime.kill_many(selector, signal)
    assert caught.value.field == field
    assert sent(runtime) == []


def test_an_ambiguous_prefix_signals_nothing(runtime: Runtime) -> None:
    a = add(runtime, 1)
    add(runtime, 2)
    with pytest.raises(AmbiguousReference):
        runtime.kill_many(Selector(refs=(a, "0000")))
    assert sent(runtime) == []
