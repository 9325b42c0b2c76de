"""The ``mydocker`` CLI's volume commands and run options against a real service."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.conftest import ROOT, Service
from tests.e2e.helpers import unique


def mydocker(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--host", service.url, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_volume_commands_and_run_options(service: Service) -> None:
    name = unique("clivol")
    made = mydocker(service, "volume", "create", name, "-l", "team=a")
    assert (made.returncode, made.stdout) == (0, f"{name}\n"), made.stderr
    assert name in mydocker(service, "volume", "ls", "-q").stdout.split()
    assert json.loads(mydocker(service, "volume", "inspect", name).stdout)["labels"] == {
        "team": "a"
    }
    wrote = mydocker(
        service,
        "run",
        "--image",
        "busybox",
        "-v",
        f"{name}:/d",
        "--init",
        "--",
        "sh",
        "-c",
        "echo $$ > /d/pid",
    )
    assert wrote.returncode == 0, wrote.stderr
    read = mydocker(
        service, "run", "--rm", "--image", "busybox", "-v", f"{name}:/d:ro", "--", "cat", "/d/pid"
    )
    assert (read.returncode, read.stdout) == (0, "2\n"), read.stderr  # PID 2: under tini
    busy = mydocker(service, "volume", "rm", name)
    assert busy.returncode == 1 and "in use" in busy.stderr
    failing = mydocker(
        service, "run", "--image", "busybox", "--restart", "on-failure:1", "-d", "--", "false"
    )
    assert failing.returncode == 0, failing.stderr
    bad = mydocker(service, "run", "--restart", "always:2", "--", "true")
    assert bad.returncode == 125 and "on-failure" in bad.stderr
