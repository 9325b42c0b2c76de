"""``mydocker events``: the query its flags make, and docker's line format."""

from __future__ import annotations

import pytest

from cli import main, output, streams
from cli.client import UsageError


def params(*argv: str) -> dict[str, object]:
    return streams.events_params(main.build_parser().parse_args(["events", *argv]))


def test_filters_become_repeatable_query_parameters() -> None:
    got = params(
        "--since",
        "1795928400",
        "-f",
        "type=container",
        "--filter",
        "event=die",
        "-f",
        "event=start",
        "-f",
        "label=app=web",
        "-f",
        "container=web",
    )
    assert got == {
        "since": "1795928400",
        "type": ["container"],
        "action": ["die", "start"],
        "label": ["app=web"],
        "container": ["web"],
    }


def test_an_unknown_filter_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--filter 'colour=red'"):
        params("-f", "colour=red")


def test_a_line_like_docker_events() -> None:
    event = {
        "time": "2026-11-29T05:00:02.301877003Z",
        "type": "container",
        "action": "die",
        "id": "3f9c",
        "name": "web",
        "attributes": {"image": "busybox", "exit_code": "0"},
    }
    assert output.event_line(event) == (
        "2026-11-29T05:00:02.301877003Z container die 3f9c (exit_code=0, image=busybox, name=web)"
    )
    assert output.event_line({**event, "name": "", "attributes": {}}).endswith("die 3f9c")
