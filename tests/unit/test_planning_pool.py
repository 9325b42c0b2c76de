"""runtime/planning.py's pool templates: one per image kept warm, the
last count of an image wins, 0 drops it, an image not in the store is
left out (logged), each planned under the pool's mount point."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import Runtime
from runtime.planning import pool_templates
from tests.fakes.launcher import FakeLauncher


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), launcher=FakeLauncher())
    rt.images.prepare()
    yield rt
    rt.records.close()


def test_one_template_per_image_the_last_count_winning(runtime: Runtime, caplog) -> None:
    sizes = [("host", 4), ("busybox", 2), ("no-such-image", 1), ("host", 3), ("busybox", 0)]
    with caplog.at_level(logging.WARNING, logger="mydocker.runtime"):
        templates = pool_templates(runtime.planner, sizes)
    assert [(spec.image, size) for spec, size in templates] == [("host", 3)]
    assert "no-such-image: not in the image store" in caplog.text


def test_an_overlay_template_is_planned_under_the_pools_dir(runtime: Runtime) -> None:
    [(spec, size)] = pool_templates(runtime.planner, [("busybox", 2)])
    assert size == 2 and spec.image == "busybox"
    plan = spec.rootfs
    assert plan is not None and plan.lower is not None and not plan.read_only
    assert plan.layer == f"{runtime.state_dir}/pool/layer"
