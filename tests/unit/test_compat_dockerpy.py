"""compat/dockerpy.py and compat/dockerpy_plugin.py: the conformance harness's
own logic (its real run is scripts/docker-py-conformance, against docker-py's
checkout, which the repository does not hold)."""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from compat import dockerpy, dockerpy_plugin


def test_the_suites_images_start_with_its_test_img(tmp_path: Path) -> None:
    base = tmp_path / "tests" / "integration" / "base.py"
    base.parent.mkdir(parents=True)
    base.write_text("import os\n\nTEST_IMG = 'alpine:3.10'\nOTHER = 'x:1'\n")
    assert dockerpy.suite_images(tmp_path) == [
        "alpine:3.10",
        "alpine:latest",
        "busybox:latest",
        "hello-world:latest",
    ]


def test_the_summary_counts_each_test_once_per_file() -> None:
    results: dict[str, Any] = {
        "tests": {
            "tests/integration/a_test.py::T::one": {"outcome": "passed"},
            "tests/integration/a_test.py::T::two": {"outcome": "failed"},
            "tests/integration/a_test.py::T::three": {"outcome": "xfailed"},
            "tests/integration/b_test.py::T::four": {"outcome": "error"},
            "tests/integration/b_test.py::T::five": {"outcome": "skipped"},
            "tests/integration/b_test.py::T::six": {"outcome": "passed"},
        },
        "deselected": {"tests/integration/b_test.py::T::swarm": "swarm"},
    }
    summary = dockerpy.summarize(results)
    assert summary["files"]["tests/integration/a_test.py"] == {
        "passed": 1,
        "failed": 1,
        "xfailed": 1,
    }
    assert summary["files"]["tests/integration/b_test.py"]["deselected"] == 1
    # Skipped, xfailed (docker-py's own marks) and deselected are not counted.
    assert (summary["counted"], summary["percent"]) == (4, 50.0)


def test_the_images_hold_alpines_layout(tmp_path: Path) -> None:
    tar = tarfile.open(fileobj=io.BytesIO(dockerpy.alpine_like_tar(tmp_path)))
    names = set(tar.getnames())
    assert {"./bin/busybox", "./bin/sh", "./var/opt", "./etc/passwd"} <= names
    passwd = tar.extractfile("./etc/passwd")
    assert passwd is not None and b"\npostgres:x:70:70:" in passwd.read()


def _item(function: object) -> Any:
    return SimpleNamespace(function=function)


def uses_swarm(self: Any) -> None:
    self.init_swarm()


def builds(client: Any) -> None:
    client.images.build(fileobj=None)


def plugin(self: Any) -> None:
    self.client.install_plugin("x")


def mentions_a_plugin_in_a_message(self: Any) -> None:
    assert 'error looking up logging plugin asdf: plugin "asdf" not found'


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        (uses_swarm, "swarm"),
        (builds, "build"),
        (plugin, "plugins"),
        (mentions_a_plugin_in_a_message, None),
    ],
)
def test_what_needs_swarm_build_or_plugins_is_deselected(
    function: object, reason: str | None
) -> None:
    assert dockerpy_plugin.needs(_item(function)) == reason


def test_the_run_refuses_the_hosts_network_namespace(monkeypatch, capsys) -> None:
    """The suite makes bridges and rules: only in the script's own namespace."""
    monkeypatch.setattr(dockerpy, "in_initial_network_namespace", lambda: True)
    assert dockerpy.run(argparse.Namespace()) == 2
    assert "host's network namespace" in capsys.readouterr().err
