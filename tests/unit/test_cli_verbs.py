"""The CLI's lifecycle and file verbs: argument parsing (cli/verbs.py, cli/files.py)."""

from __future__ import annotations

import argparse

import pytest

from cli.files import _split
from cli.main import build_parser
from cli.verbs import memory_size


def test_memory_size() -> None:
    assert memory_size("64m") == 64 << 20
    assert memory_size("1G") == 1 << 30
    assert memory_size("4096") == 4096
    with pytest.raises(argparse.ArgumentTypeError):
        memory_size("lots")


def test_cp_sides() -> None:
    assert _split("web:/etc/hosts") == ("web", "/etc/hosts")
    assert _split("web:") == ("web", "/")
    assert _split("./local:file") is None and _split("/abs/path") is None
    assert _split("plain") is None


def test_parsers() -> None:
    parser = build_parser()
    top = parser.parse_args(["top", "web", "-o", "pid,comm"])
    assert (top.action, top.ref, top.ps_args) == ("top", "web", ["-o", "pid,comm"])
    update = parser.parse_args(["update", "web", "-m", "1g", "--cpus", "1.5"])
    assert (update.memory, update.cpus, update.pids_limit) == (1 << 30, 1.5, None)
    restart = parser.parse_args(["restart", "-t", "3", "web"])
    assert restart.time == 3
    export = parser.parse_args(["export", "web", "-o", "x.tar"])
    assert export.output == "x.tar"
