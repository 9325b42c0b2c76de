"""runtime/planning.py ``plan_rootfs`` and ``make_root_dirs``: where a
container's root is mounted, and the directories made for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import Runtime
from runtime.planning import make_root_dirs
from runtime.spec import CreateRequest, RootfsPlan, SecurityRequest
from tests.fakes.launcher import FakeLauncher


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(
        str(tmp_path / "state"), launcher=FakeLauncher(), userns_range=(200000, 65536)
    )
    yield rt
    rt.records.close()


def _host_plan(rt: Runtime, container_id: str, userns: bool = False) -> RootfsPlan:
    security = rt.planner.security(SecurityRequest(userns=userns))
    spec = rt.planner.container_spec(container_id, CreateRequest(("true",)), security)
    assert spec.rootfs is not None and spec.rootfs.lower is None  # the host image
    return spec.rootfs


def test_host_containers_share_one_mount_point_made_once(runtime: Runtime) -> None:
    """Each child mounts its root there in its own mount namespace: nothing
    is made in the container's own dir."""
    first, second = _host_plan(runtime, "a" * 64), _host_plan(runtime, "b" * 64)
    shared = runtime.layout.host_layer
    assert first.layer == second.layer == shared
    assert first.root == second.root == os.path.join(shared, "root")
    make_root_dirs(first, None)
    make_root_dirs(second, None)  # already there: fine
    assert os.path.isdir(first.root)
    assert not os.path.exists(runtime.layout.container_dir("a" * 64))


def test_a_user_namespaces_root_keeps_a_mount_point_of_its_own(runtime: Runtime) -> None:
    """Its mapped root must own the mount point (make_root_dirs chowns it)."""
    plan = _host_plan(runtime, "c" * 64, userns=True)
    assert plan.layer == os.path.join(runtime.layout.container_dir("c" * 64), "layer")
    assert plan.root == os.path.join(plan.layer, "root")
