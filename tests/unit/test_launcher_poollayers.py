"""runtime/launcher/poollayers.py on a temporary dir: a child's dir and
its plan, the claim's move into a container's layer dir (over the empty
dirs the API made, or none), what is removed when, and the start-up sweep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.launcher.poollayers import PoolLayers
from runtime.spec import ContainerSpec, RootfsPlan

TEMPLATE = ContainerSpec(
    command=("true",),
    hostname="pool",
    rootfs=RootfsPlan(root="/s/pool/layer/root", lower="/images/busybox", layer="/s/pool/layer"),
)


def filled(layers: PoolLayers, name: str) -> tuple[ContainerSpec, str]:
    """A child's dir as the child leaves it after its fill."""
    spec, layer = layers.make(TEMPLATE, name)
    for sub in ("upper", "work"):
        os.mkdir(os.path.join(layer, "rw", sub))
    return spec, layer


def container_layer(tmp_path: Path, api_made: bool) -> RootfsPlan:
    layer = tmp_path / "containers" / "c1" / "layer"
    (layer / "root").mkdir(parents=True)
    if api_made:
        for sub in ("upper", "work"):
            (layer / "rw" / sub).mkdir(parents=True)
    return RootfsPlan(root=str(layer / "root"), lower="/images/busybox", layer=str(layer))


def test_make_gives_a_child_its_own_dir_and_plan(tmp_path: Path) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    spec, layer = layers.make(TEMPLATE, "pool-7-1")
    assert layer == str(tmp_path / "children" / "pool-7-1")
    assert sorted(os.listdir(layer)) == ["root", "rw"]
    assert spec.rootfs == RootfsPlan(
        root=os.path.join(layer, "root"), lower="/images/busybox", layer=layer
    )
    assert spec.command == TEMPLATE.command
    with pytest.raises(FileExistsError):  # a name is used once
        layers.make(TEMPLATE, "pool-7-1")


@pytest.mark.parametrize("api_made", [True, False], ids=["over the API's dirs", "no rw dir"])
def test_move_renames_upper_and_work_into_the_containers_layer(
    tmp_path: Path, api_made: bool
) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    _spec, layer = filled(layers, "pool-7-1")
    (Path(layer) / "rw" / "upper" / "written").write_text("x")
    inode = os.stat(os.path.join(layer, "rw", "upper")).st_ino
    plan = container_layer(tmp_path, api_made)
    layers.move(layer, plan)
    assert plan.layer is not None
    upper = Path(plan.layer) / "rw" / "upper"
    assert upper.stat().st_ino == inode  # the same dir, which the mount holds
    assert (upper / "written").read_text() == "x"
    assert (Path(plan.layer) / "rw" / "work").is_dir()
    assert os.listdir(os.path.join(layer, "rw")) == []
    # The emptied dir goes off the critical path, at the next fill.
    assert layers.spent == [layer] and os.path.isdir(layer)
    layers.remove_spent()
    assert not os.path.exists(layer) and layers.spent == []


def test_a_move_onto_a_used_layer_fails_and_keeps_nothing_spent(tmp_path: Path) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    _spec, layer = filled(layers, "pool-7-1")
    plan = container_layer(tmp_path, api_made=True)
    assert plan.layer is not None
    (Path(plan.layer) / "rw" / "work" / "busy").mkdir()
    with pytest.raises(OSError):
        layers.move(layer, plan)
    assert layers.spent == []
    layers.remove(layer)
    assert not os.path.exists(layer)


def test_sweep_removes_every_childs_dir(tmp_path: Path) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    assert layers.sweep() == 0  # none made yet
    for n in (1, 2):
        _spec, layer = filled(layers, f"pool-7-{n}")
        (Path(layer) / "rw" / "upper" / "f").write_text("x")
    assert layers.sweep() == 2
    assert os.listdir(tmp_path / "children") == []
