"""``--default-limits`` / ``MYDOCKER_DEFAULT_LIMITS``: parsed and checked at start-up."""

from __future__ import annotations

import pytest

from app.config import parse_args
from runtime.spec import Limits


def test_default_limits_from_the_flag():
    settings = parse_args(
        ["--default-limits", '{"memory_bytes": 268435456, "timeout_seconds": 60}']
    )
    assert settings.default_limits == Limits(memory_bytes=256 << 20, timeout_seconds=60)


def test_default_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("MYDOCKER_DEFAULT_LIMITS", '{"pids": 100}')
    assert parse_args([]).default_limits == Limits(pids=100)


def test_no_default_limits_by_default(monkeypatch):
    monkeypatch.delenv("MYDOCKER_DEFAULT_LIMITS", raising=False)
    assert parse_args([]).default_limits == Limits()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"pids": 0}', "limits.pids: must be between 1 and 4194304, not 0"),
        ('{"disk": 5}', "unknown limit"),
    ],
)
def test_bad_default_limits_stop_the_start(capsys, text, message):
    with pytest.raises(SystemExit):
        parse_args(["--default-limits", text])
    assert message in capsys.readouterr().err
