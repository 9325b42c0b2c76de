"""runtime/init.py: the argv the child execs, and where tini comes from."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from runtime import init, rootfs
from runtime.spec import ContainerSpec, RootfsPlan


def test_without_init_the_command_is_the_argv() -> None:
    spec = ContainerSpec(command=("sleep", "1"), hostname="h")
    assert init.argv(spec) == ["sleep", "1"]


def test_with_init_the_command_runs_under_tini() -> None:
    spec = ContainerSpec(command=("sh", "-c", "--help"), hostname="h", init=True)
    assert init.argv(spec) == [init.TARGET, "--", "sh", "-c", "--help"]


def test_tini_is_static_and_bound_after_dev() -> None:
    # The static build runs in any image (busybox has no glibc).
    with open(init.TINI, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert os.access(init.TINI, os.X_OK)
    plan = RootfsPlan(root="/x/layer/root", lower="/img", layer="/x/layer")
    spec = ContainerSpec(command=("true",), hostname="h", init=True, rootfs=plan)
    names = [name for name, _ in rootfs.steps(spec)]
    assert names.index(f"bind {init.TARGET}") > names.index("mount /dev")
    assert names.index(f"clone {init.TINI}") < names.index("pivot_root")
    plain = [
        name
        for name, _ in rootfs.steps(ContainerSpec(command=("true",), hostname="h", rootfs=plan))
    ]
    assert f"bind {init.TARGET}" not in plain


def test_forwarding_is_having_started_the_command() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    lone = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while not init.forwarding(parent.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not init.forwarding(lone.pid)
        with open(f"/proc/{parent.pid}/task/{parent.pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    finally:
        lone.kill()
        parent.kill()
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    lone.wait()
    parent.wait()
    assert not init.forwarding(parent.pid)  # gone
