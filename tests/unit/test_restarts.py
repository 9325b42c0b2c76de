"""runtime/restarts.py: the policy's decision and Docker's back-off."""

from __future__ import annotations

import time
from typing import Any

import pytest

from runtime.records import ContainerRecord
from runtime.restarts import FIRST_DELAY, MAX_DELAY, Restarts, next_delay, should_restart
from runtime.spec import ContainerSpec, RestartPolicy, Status

T0 = "2026-01-01T00:00:00Z"


def record(policy: RestartPolicy, **fields: Any) -> ContainerRecord:
    spec = ContainerSpec(command=("true",), hostname="h", restart_policy=policy)
    values: dict[str, Any] = {"status": Status.exited, "exit_code": 1, **fields}
    return ContainerRecord(id="a" * 64, name="c", spec=spec, created_at=T0, **values)


@pytest.mark.parametrize(
    ("policy", "fields", "expected"),
    [
        (RestartPolicy("no"), {}, False),
        (RestartPolicy("on-failure"), {"exit_code": 0}, False),
        (RestartPolicy("on-failure"), {"exit_code": 2}, True),
        (RestartPolicy("on-failure", 2), {"results": {"restart_count": 1}}, True),
        (RestartPolicy("on-failure", 2), {"results": {"restart_count": 2}}, False),
        (RestartPolicy("on-failure"), {"exit_code": None, "error": "lost"}, True),
        (RestartPolicy("always"), {"exit_code": 0}, True),
        (RestartPolicy("unless-stopped"), {"exit_code": 0}, True),
        (RestartPolicy("always"), {"status": Status.running}, False),
        (RestartPolicy("always"), {"results": {"stopped_by_user": True}}, False),
    ],
)
def test_should_restart(policy: RestartPolicy, fields: dict[str, Any], expected: bool) -> None:
    assert should_restart(record(policy, **fields)) is expected


def test_at_service_start_always_comes_back_after_a_user_stop_unless_stopped_not() -> None:
    stopped = {"results": {"stopped_by_user": True}}
    assert should_restart(record(RestartPolicy("always"), **stopped), at_start=True)
    assert not should_restart(record(RestartPolicy("unless-stopped"), **stopped), at_start=True)


def test_back_off_doubles_after_short_runs_and_resets_after_long_ones() -> None:
    always = RestartPolicy("always")
    short = {"started_at": T0, "finished_at": "2026-01-01T00:00:01Z"}
    assert next_delay(record(always, **short)) == FIRST_DELAY
    assert next_delay(record(always, results={"restart_delay": 0.4}, **short)) == 0.8
    assert next_delay(record(always, results={"restart_delay": 50}, **short)) == MAX_DELAY
    long = {"started_at": T0, "finished_at": "2026-01-01T00:00:10Z"}
    assert next_delay(record(always, results={"restart_delay": 6.4}, **long)) == FIRST_DELAY


def test_policy_rules() -> None:
    with pytest.raises(ValueError, match="restart_policy.name"):
        RestartPolicy("sometimes")
    with pytest.raises(ValueError, match="only for the on-failure"):
        RestartPolicy("always", 3)
    with pytest.raises(ValueError, match="negative"):
        RestartPolicy("on-failure", -1)


def test_a_pending_restart_is_seen_and_cancelled() -> None:
    """``pending`` is Docker's ``restarting`` (a removal without force is
    refused); ``cancel`` drops it, and the timer then restarts nothing."""
    relaunched: list[str] = []

    def relaunch(container_id: str, results: dict[str, object]) -> ContainerRecord:
        relaunched.append(container_id)
        return exited

    restarts = Restarts(RecordStub(), relaunch)  # type: ignore[arg-type]
    exited = record(RestartPolicy("always"), exit_code=0)
    restarts._schedule(exited, 0.2)
    assert restarts.pending(exited.id)
    restarts.cancel(exited.id)
    assert not restarts.pending(exited.id)
    time.sleep(0.3)
    assert relaunched == []
    restarts.close()


class RecordStub:
    def get(self, container_id: str) -> ContainerRecord | None:
        return record(RestartPolicy("always"), exit_code=0)


def test_restarting_is_an_exit_its_policy_undoes() -> None:
    restarts = Restarts(RecordStub(), lambda cid, _: record(RestartPolicy("always")))  # type: ignore[arg-type]
    assert restarts.restarting(record(RestartPolicy("always"), exit_code=0))
    assert not restarts.restarting(record(RestartPolicy("no")))
    stopped = record(RestartPolicy("always"), results={"stopped_by_user": True})
    assert not restarts.restarting(stopped)
    assert not restarts.restarting(record(RestartPolicy("always"), status=Status.running))
