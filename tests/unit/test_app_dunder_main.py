"""``python -m app`` refuses to start without root, at once and clearly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uvicorn

import app.__main__ as app_main


def test_not_root_exits_1_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    def no_serving(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not start serving")

    monkeypatch.setattr(uvicorn, "run", no_serving)
    state = tmp_path / "state"
    assert app_main.main(["--state-dir", str(state), "--port", "8000"]) == 1
    err = capsys.readouterr().err
    assert "must run as root" in err
    assert not state.exists()
