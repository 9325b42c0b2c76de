"""runtime/__init__.py and runtime/images/__init__.py: the facade's names on
first use, so that the launcher (and every child it clones) loads only what
it runs: no SQLite, no image store, no HTTP client (docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What the launcher's process imports before it clones anything.
LAUNCHER = "import runtime.launcher.server, runtime.launcher.startup, runtime.child"
HEAVY = ("httpx", "sqlite3", "runtime.runtime", "runtime.records", "runtime.images.store")


def imported(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(list(sys.modules)))"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out))


def test_the_launcher_loads_neither_the_facade_nor_the_image_store() -> None:
    modules = imported(LAUNCHER)
    assert "runtime.libc" in modules and "runtime.images.viewtrees" in modules
    assert not set(HEAVY) & modules, sorted(set(HEAVY) & modules)


def test_the_facades_names_still_import() -> None:
    modules = imported(
        "from runtime import Runtime, NotFound, KillResult, LaunchTrace\n"
        "from runtime.images import Image, ImageStore, normalize_name\n"
        "import runtime, runtime.images\n"
        "assert runtime.Selector.__module__ == 'runtime.selection'\n"
        "assert runtime.images.DEFAULT_MAX_BYTES > 0"
    )
    assert {"runtime.runtime", "runtime.images.store"} <= modules


def test_an_unknown_name_is_an_attribute_error() -> None:
    imported(
        "import runtime, runtime.images\n"
        "for module in (runtime, runtime.images):\n"
        "    try:\n"
        "        module.NoSuchName\n"
        "    except AttributeError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(1)"
    )
