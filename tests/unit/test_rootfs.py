"""runtime.rootfs: the order of the named steps (their effects are tested in
tests/e2e/test_rootfs.py and test_mounts.py, as root)."""

from __future__ import annotations

from typing import Any

from runtime import rootfs
from runtime.spec import ContainerSpec, Mount, RootfsPlan, Security

BIND = Mount("bind", "/data", source="/srv")
TMPFS = Mount("tmpfs", "/scratch")


def names(
    image: str, plan: RootfsPlan, view: dict[str, int] | None = None, **kwargs: Any
) -> list[str]:
    spec = ContainerSpec(
        command=("sh",), hostname="h", image=image, rootfs=plan, mounts=(BIND, TMPFS), **kwargs
    )
    return [name for name, _ in rootfs.steps(spec, view)]


HOST = RootfsPlan(
    root="/s/c/layer/root",
    layer="/s/c/layer",
    binds=("/usr", "/etc"),
    links=(("/bin", "usr/bin"),),
    masks=("/etc/shadow",),
    hide=("/s",),
)
IMAGE = RootfsPlan(root="/s/c/layer/root", lower="/s/i/b/rootfs", layer="/s/c/layer")


def test_host_image_steps() -> None:
    steps = names("host", HOST, workdir="/tmp/w")
    assert steps[:8] == [
        "enter the container's layer dir",
        "clone /srv",
        "clone /usr",
        "clone /etc",
        "mount the root (host)",
        "mount /proc",
        "mount /sys",
        "pivot_root",
    ]
    assert steps[steps.index("mount /dev") : steps.index("make /dev links")] == [
        "mount /dev",
        "make /dev nodes",
        "mount /dev/pts",
        "mount /dev/shm",
    ]
    tail = steps[steps.index("make /dev links") + 1 :]
    assert tail == [
        "mount tmpfs /tmp",
        "mount tmpfs /run",
        "mount tmpfs /var/tmp",
        "mask /etc/shadow",
        "hide /s",
        "mount /data",
        "mount /scratch",
        "mask /proc and /sys paths",
        "create workdir /tmp/w",
        "make the root read-only",
    ]
    assert "become root of the user namespace" not in steps


def test_a_prepared_view_is_attached_as_it_comes() -> None:
    # The launcher's copies of the view's trees (runtime/images/viewtrees.py)
    # hold /etc's masks already: the child neither clones nor masks.
    steps = names("host", HOST, view={"/usr": 10, "/etc": 11})
    assert not any(s in steps for s in ("clone /usr", "clone /etc", "mask /etc/shadow"))
    assert "clone /srv" in steps  # the user's bind is still the child's to clone
    assert steps.index("mount the root (host)") < steps.index("pivot_root")
    assert "hide /s" in steps and steps[-1] == "make the root read-only"


def test_an_image_enters_its_layer_and_never_hides_masks_or_adds_tmpfs() -> None:
    steps = names("busybox", IMAGE)
    assert steps[0] == "enter the container's layer dir"
    assert not any(s.startswith(("hide", "mount tmpfs", "mask /etc")) for s in steps)
    assert steps.index("clone /srv") < steps.index("mount the root (busybox)")
    assert steps.index("pivot_root") < steps.index("mount /dev") < steps.index("mount /data")
    assert "make the root read-only" not in steps and "create workdir /" not in steps


def test_read_only_makes_the_root_read_only_last() -> None:
    plan = RootfsPlan(IMAGE.root, IMAGE.lower, IMAGE.layer, read_only=True)
    steps = names("busybox", plan, workdir="/w")
    assert steps[-2:] == ["create workdir /w", "make the root read-only"]


def test_user_namespace_root_comes_after_the_clones_and_before_the_root() -> None:
    # Host root clones what the namespace's root could not reach (the state
    # dir is 0700); the root (an overlay, or the host view's tmpfs) is then
    # mounted by the namespace's root, whose files it can own.
    userns = Security(userns_host_id=100000)
    for image, plan in (("busybox", IMAGE), ("host", HOST)):
        steps = names(image, plan, security=userns)
        become = steps.index("become root of the user namespace")
        assert steps.index("clone /srv") < become < steps.index(f"mount the root ({image})")
        assert steps.index("enter the container's layer dir") < become


def test_device_nodes_are_made_outside_a_user_namespace_and_bound_inside() -> None:
    # mknod(2) of a device is refused in a user namespace: there the host's
    # nodes are cloned while the child is host root and bound after pivot_root.
    clones = [f"clone /dev/{d}" for d in rootfs.DEVICES]
    binds = [f"bind /dev/{d}" for d in rootfs.DEVICES]
    for image, plan in (("busybox", IMAGE), ("host", HOST)):
        plain = names(image, plan)
        assert "make /dev nodes" in plain
        assert not set(clones + binds) & set(plain)
        inside = names(image, plan, security=Security(userns_host_id=100000))
        assert "make /dev nodes" not in inside
        become = inside.index("become root of the user namespace")
        assert [s for s in inside if s in clones] == clones
        assert all(inside.index(c) < become for c in clones)
        mount_dev = inside.index("mount /dev")
        assert inside[mount_dev + 1 : mount_dev + 1 + len(binds)] == binds
