"""runtime/launcher/poollayers.py on a temporary dir: a child's dir and
its plan, the claim's move into a container's layer dir (swapped with the
empty dirs the API made, or where it made none), a failed move, and the
start-up sweep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.launcher.poollayers import SPENT, PoolLayers
from runtime.spec import ContainerSpec, RootfsPlan

TEMPLATE = ContainerSpec(
    command=("true",),
    hostname="pool",
    rootfs=RootfsPlan(root="/s/pool/layer/root", lower="/images/busybox", layer="/s/pool/layer"),
)


def filled(layers: PoolLayers, name: str) -> tuple[ContainerSpec, str]:
    """A child's dir as the child leaves it after its fill."""
    spec, layer = layers.make(TEMPLATE, name)
    assert spec.rootfs is not None
    PoolLayers.make_dirs(spec.rootfs)  # the child's step
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


def test_make_plans_a_dir_of_its_own_which_the_child_makes(tmp_path: Path) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    spec, layer = layers.make(TEMPLATE, "pool-7-1")
    assert layer == str(tmp_path / "children" / "pool-7-1")
    assert os.listdir(tmp_path / "children") == []  # nothing made in the launcher's loop
    assert spec.rootfs == RootfsPlan(
        root=os.path.join(layer, "root"), lower="/images/busybox", layer=layer
    )
    assert spec.command == TEMPLATE.command
    PoolLayers.make_dirs(spec.rootfs)
    assert sorted(os.listdir(layer)) == ["root", "rw"]
    with pytest.raises(FileExistsError):  # a name is used once
        PoolLayers.make_dirs(spec.rootfs)


@pytest.mark.parametrize("api_made", [True, False], ids=["swapped with the API's", "no rw dir"])
def test_move_gives_the_container_the_childs_rw_dir(tmp_path: Path, api_made: bool) -> None:
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
    # The child's dir left the pool, into the container's layer dir, with
    # the API's empty dirs: removed with the container, none at the claim.
    assert not os.path.exists(layer) and os.listdir(tmp_path / "children") == []
    spent = Path(plan.layer) / SPENT
    if api_made:
        assert sorted(os.listdir(spent)) == ["root", "rw"]
        assert sorted(os.listdir(spent / "rw")) == ["upper", "work"]
        assert os.listdir(spent / "rw" / "upper") == []
    else:
        assert os.listdir(spent) == ["root"]


def test_a_child_without_its_rw_dir_is_not_moved(tmp_path: Path) -> None:
    layers = PoolLayers(str(tmp_path / "children"))
    _spec, layer = filled(layers, "pool-7-1")
    os.rename(os.path.join(layer, "rw"), os.path.join(layer, "gone"))
    plan = container_layer(tmp_path, api_made=True)
    assert plan.layer is not None
    with pytest.raises(OSError, match="renameat2"):
        layers.move(layer, plan)
    # The container's dirs are as the API made them; the child's stays
    # in the pool, for its discard to remove.
    assert sorted(os.listdir(Path(plan.layer) / "rw")) == ["upper", "work"]
    assert os.path.isdir(layer)
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


def test_only_a_layer_that_has_not_run_is_fresh(tmp_path: Path) -> None:
    plan = container_layer(tmp_path, api_made=False)
    assert plan.layer is not None
    assert PoolLayers.fresh(plan)  # no upper dir made yet
    upper = Path(plan.layer) / "rw" / "upper"
    upper.mkdir(parents=True)
    assert PoolLayers.fresh(plan)  # made, empty
    (upper / "marker").write_text("kept")
    assert not PoolLayers.fresh(plan)  # a restart: what it wrote stays
    (upper / "marker").unlink()
    (Path(plan.layer) / SPENT).mkdir()
    assert not PoolLayers.fresh(plan)  # a pooled child served it before
