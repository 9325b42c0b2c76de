"""app/docker/events.py: the log's events in Docker's shape, and its filters;
app/docker/params.py ``parse_time``."""

from __future__ import annotations

import pytest

from app.docker.errors import DockerError
from app.docker.events import docker_event, event_filter
from app.docker.params import parse_time
from runtime.events import Event, EventType

DIE = Event(
    1_795_928_400_123_456_789,
    EventType.CONTAINER,
    "die",
    "c" * 64,
    "web",
    {"exit_code": "3", "image": "busybox", "label.team": "a"},
)
EXEC_DIE = Event(
    1_795_928_401_000_000_000,
    EventType.EXEC,
    "exec_die",
    "e" * 64,
    "",
    {"container": "c" * 64, "container_name": "web", "exit_code": "0"},
)
IMPORT = Event(1_795_928_402_000_000_000, EventType.IMAGE, "import", "tool", "tool")
VOLUME = Event(1_795_928_403_000_000_000, EventType.VOLUME, "create", "data", "data")


def test_a_container_event() -> None:
    assert docker_event(DIE) == {
        "Type": "container",
        "Action": "die",
        "Actor": {
            "ID": "c" * 64,
            "Attributes": {"exitCode": "3", "image": "busybox", "team": "a", "name": "web"},
        },
        "scope": "local",
        "time": 1_795_928_400,
        "timeNano": 1_795_928_400_123_456_789,
        "status": "die",
        "id": "c" * 64,
        "from": "busybox",
    }


def test_an_exec_event_is_its_containers() -> None:
    shown = docker_event(EXEC_DIE)
    assert (shown["Type"], shown["Action"], shown["Actor"]["ID"]) == (
        "container",
        "exec_die",
        "c" * 64,
    )
    assert shown["Actor"]["Attributes"] == {"name": "web", "exitCode": "0", "execID": "e" * 64}


def test_filters() -> None:
    base, keep = event_filter("1", "", '{"type": ["container"], "container": ["web"]}')
    assert base.matches(DIE) and keep(DIE) and base.matches(EXEC_DIE) and keep(EXEC_DIE)
    assert not base.matches(IMPORT)
    base, keep = event_filter("1", "", '{"image": ["busybox:latest"]}')
    assert keep(DIE) and not keep(IMPORT)
    base, keep = event_filter("1", "", '{"image": ["tool"], "event": ["import"]}')
    assert keep(IMPORT) and base.matches(IMPORT) and not base.matches(DIE)
    base, keep = event_filter("1", "", '{"type": ["volume"]}')
    assert base.matches(VOLUME) and keep(VOLUME)
    assert not base.matches(DIE) and not base.matches(IMPORT)
    base, keep = event_filter("1", "", '{"type": ["daemon"]}')  # never published
    assert not keep(DIE) and not keep(IMPORT) and not keep(VOLUME)
    base, _ = event_filter("1", "", '{"label": ["team=b"]}')
    assert not base.matches(DIE)


@pytest.mark.parametrize(
    "filters", ['{"type": ["nope"]}', '{"colour": ["red"]}', "[", '{"type": 1}']
)
def test_bad_filters_are_400s(filters: str) -> None:
    with pytest.raises(DockerError) as caught:
        event_filter("", "", filters)
    assert caught.value.status == 400


def test_times() -> None:
    now = 1_795_928_400 * 10**9
    assert parse_time("until", "1795928400.5") == now + 5 * 10**8
    assert parse_time("until", "2026-11-29T05:00:00Z") == 1_795_928_400 * 10**9
    assert parse_time("until", "10m", now_ns=now) == now - 600 * 10**9
    assert parse_time("until", "1h30m", now_ns=now) == now - 5400 * 10**9
    assert parse_time("until", "1.5s", now_ns=now) == now - 15 * 10**8
    for bad in ("yesterday", "10x", "", "m"):
        with pytest.raises(DockerError, match="invalid until"):
            parse_time("until", bad)
