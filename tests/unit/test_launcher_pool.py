"""runtime/launcher/pool.py without cloning: which specs a pooled child can
serve, claims (used once, ready only), misses, giving up after failures, and
no pool on a cgroup driver that cannot reset counters."""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from runtime import cgroups
from runtime.launcher import pool, poolkeys
from runtime.launcher.plumbing import Parked
from runtime.launcher.poollayers import PoolLayers
from runtime.network.attachment import BRIDGE, HOST, NONE, Attachment
from runtime.spec import ContainerSpec, Limits, Mount, RootfsPlan, Security
from tests.fakes.cgroupfs import FakeCgroupFs

PLAN = RootfsPlan(root="/s/pool/layer/root", layer="/s/pool/layer", binds=("/usr",))
TEMPLATE = ContainerSpec(command=("true",), hostname="pool", rootfs=PLAN)


CONNECTED = Attachment(
    mode=BRIDGE, network="n", bridge="br0", address="10.1.0.2/24", veth="v0", etc_dir="/s/c/1"
)


def spec(**changes: object) -> ContainerSpec:
    plan = RootfsPlan(root="/s/c/1/layer/root", layer="/s/c/1/layer", binds=("/usr",))
    base: dict[str, object] = {"command": ("sh",), "hostname": "c1", "rootfs": plan}
    return ContainerSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_a_host_spec_fits_whatever_its_command_user_and_layer_dir() -> None:
    template = poolkeys.key(TEMPLATE)
    assert template is not None
    other_user = spec(security=Security(uid=1000, gid=1000), env={"A": "1"}, workdir="/tmp")
    only_lo = spec(network=Attachment(mode=NONE))
    unconfined = spec(security=Security(seccomp="unconfined"))
    for candidate in (spec(), other_user, unconfined, only_lo):
        wanted = poolkeys.key(candidate)
        assert wanted is not None and poolkeys.fits(template, wanted)


@pytest.mark.parametrize(
    "candidate",
    [
        spec(rootfs=None),
        spec(mounts=(Mount("tmpfs", "/scratch"),)),
        spec(security=Security(userns_host_id=100000)),
        spec(rootfs=RootfsPlan(root="/r", lower="/images/busybox", layer="/l", read_only=True)),
        spec(network=Attachment(mode=BRIDGE, network=BRIDGE, bridge="br0", veth="v0")),
        spec(network=Attachment(mode=HOST, network=HOST)),
        spec(network=CONNECTED, endpoints=(CONNECTED,)),
        spec(init=True),
    ],
    ids=[
        "no root plan",
        "user mounts",
        "userns",
        "read-only overlay",
        "disconnected bridge",
        "host network",
        "second network",
        "init",
    ],
)
def test_specs_a_pooled_child_cannot_serve(candidate: ContainerSpec) -> None:
    assert poolkeys.key(candidate) is None


def test_a_child_with_the_whole_root_serves_only_specs_that_may_share_it() -> None:
    """A template like the default one gets one copy of the whole root, as a
    cold child of it would (runtime/images/viewtrees.py ``shareable``); a spec
    that would write into the root's tmpfs (a workdir made there, SYS_ADMIN)
    takes the cold path instead of sharing it."""
    template = poolkeys.key(TEMPLATE)
    assert isinstance(template, tuple) and template[poolkeys.WHOLE] is True
    for candidate in (spec(workdir="/data"), spec(workdir="/var/log/app")):
        wanted = poolkeys.key(candidate)
        assert isinstance(wanted, tuple) and wanted[poolkeys.WHOLE] is False
        assert not poolkeys.fits(template, wanted)
    # A child that holds the view tree by tree serves both kinds.
    per_tree = poolkeys.key(dataclasses.replace(TEMPLATE, workdir="/data"))
    for candidate in (spec(), spec(workdir="/data")):
        wanted = poolkeys.key(candidate)
        assert per_tree is not None and wanted is not None and poolkeys.fits(per_tree, wanted)


def test_another_view_or_seccomp_program_does_not_fit() -> None:
    template = poolkeys.key(TEMPLATE)
    other_view = spec(rootfs=RootfsPlan(root="/r", layer="/l", binds=("/usr", "/opt")))
    more_caps = spec(security=Security(capabilities=("SYS_ADMIN",)))
    for candidate in (other_view, more_caps, spec(image="other")):
        wanted = poolkeys.key(candidate)
        assert wanted is not None and not poolkeys.fits(template, wanted)


BUSYBOX_PLAN = RootfsPlan(root="/s/pool/layer/root", lower="/images/busybox", layer="/s/pool/layer")
BUSYBOX = ContainerSpec(
    command=("true",), hostname="pool", image="busybox", image_id="b1", rootfs=BUSYBOX_PLAN
)


def busybox(**changes: object) -> ContainerSpec:
    plan = RootfsPlan(root="/s/c/2/layer/root", lower="/images/busybox", layer="/s/c/2/layer")
    base: dict[str, object] = {"image": "busybox", "image_id": "b1", "rootfs": plan}
    return spec(**{**base, **changes})


def test_an_overlay_spec_fits_its_images_template_whatever_its_name_and_layer_dir() -> None:
    template = poolkeys.key(BUSYBOX)
    assert template is not None
    for candidate in (
        busybox(),
        busybox(image="busybox:latest", env={"A": "1"}, workdir="/data"),
        busybox(security=Security(uid=1000, gid=1000)),
    ):
        wanted = poolkeys.key(candidate)
        assert wanted is not None and poolkeys.fits(template, wanted)


def test_an_overlay_template_serves_no_other_root() -> None:
    template = poolkeys.key(BUSYBOX)
    assert template is not None
    other_lower = RootfsPlan(root="/r", lower="/images/alpine", layer="/l")
    layered = dataclasses.replace(BUSYBOX_PLAN, more_lowers=("/images/base",))
    for candidate in (
        busybox(image_id="b2", rootfs=other_lower),
        busybox(rootfs=layered),
        spec(),  # the host image
    ):
        wanted = poolkeys.key(candidate)
        assert wanted is not None and not poolkeys.fits(template, wanted)
    host = poolkeys.key(TEMPLATE)
    wanted = poolkeys.key(busybox())
    assert host is not None and wanted is not None and not poolkeys.fits(host, wanted)


def test_overlay_templates_need_a_dir_for_their_childrens_layers(selector, tmp_path) -> None:
    without = pool.Pool(selector, None)
    without.configure([poolkeys.Template(TEMPLATE, 1), poolkeys.Template(BUSYBOX, 2)])
    assert [t.spec for t in without.templates] == [TEMPLATE]
    with_layers = pool.Pool(selector, None, layers=PoolLayers(str(tmp_path)))
    with_layers.configure([poolkeys.Template(TEMPLATE, 1), poolkeys.Template(BUSYBOX, 2)])
    assert [t.spec for t in with_layers.templates] == [TEMPLATE, BUSYBOX]


def test_an_overlay_root_that_ran_before_is_not_served_by_a_pooled_child(
    selector, tmp_path
) -> None:
    p = pool.Pool(selector, None, layers=PoolLayers(str(tmp_path / "children")))
    p.configure([poolkeys.Template(BUSYBOX, 1)])
    ready = fake_warm(p, p.templates[0], ready=True)
    layer = tmp_path / "c2" / "layer"
    (layer / "rw" / "upper").mkdir(parents=True)
    (layer / "rw" / "upper" / "marker").write_text("kept")
    plan = RootfsPlan(root=str(layer / "root"), lower="/images/busybox", layer=str(layer))
    assert p.claim(busybox(rootfs=plan)) is None  # a restart: the cold path
    assert p.children == [ready] and (p.counts.hits, p.counts.misses) == (0, 1)
    (layer / "rw" / "upper" / "marker").unlink()
    assert p.claim(busybox(rootfs=plan)) is ready  # never run: fresh
    ready.channel.close()
    os.close(ready.pidfd)


def test_an_image_pulled_again_makes_the_pool_follow_it(selector, tmp_path) -> None:
    p = pool.Pool(selector, None, layers=PoolLayers(str(tmp_path)))
    p.configure([poolkeys.Template(TEMPLATE, 1), poolkeys.Template(BUSYBOX, 2)])
    newer = busybox(image_id="b2", rootfs=RootfsPlan(root="/r", lower="/images/b2", layer="/l"))
    assert p.claim(newer) is None
    host, followed = p.templates
    assert host.spec == TEMPLATE and followed.size == 2
    assert followed.spec.image_id == "b2" and followed.spec.rootfs is not None
    assert followed.spec.rootfs.lower == "/images/b2"
    assert followed.spec.rootfs.layer == BUSYBOX_PLAN.layer
    wanted = poolkeys.key(newer)
    assert followed.key is not None and wanted is not None and poolkeys.fits(followed.key, wanted)
    # Another name of another image is not followed.
    p.claim(busybox(image="alpine", image_id="a1"))
    assert p.templates == [host, followed]


@pytest.fixture
def selector() -> Iterator[selectors.BaseSelector]:
    sel = selectors.DefaultSelector()
    yield sel
    sel.close()


def fake_warm(p: pool.Pool, template: poolkeys.Template, ready: bool) -> pool.Warm:
    """A pooled child's bookkeeping over real fds, but no process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.close()
    pidfd_stand_in, _w = os.pipe()
    os.close(_w)
    warm = pool.Warm(template, 1, pidfd_stand_in, None, ours, -1, -1, None, ready=ready)
    p.children.append(warm)
    p.selector.register(pidfd_stand_in, selectors.EVENT_READ)
    return warm


def says_ready(p: pool.Pool, pid: int, cgroup: cgroups.Cgroup | None) -> pool.Warm:
    """A filling child of the first template (real fds, no process) that
    sends its READY_BYTE; the pool has handled it (``_readied``)."""
    ours, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd_stand_in, _w = os.pipe()
    os.close(_w)
    warm = pool.Warm(p.templates[0], pid, pidfd_stand_in, None, ours, -1, -1, cgroup)
    p.children.append(warm)
    p.selector.register(pidfd_stand_in, selectors.EVENT_READ)
    p.selector.register(ours, selectors.EVENT_READ)
    child_end.send(b"R")
    p._readied(warm)
    child_end.close()
    return warm


def test_a_claim_takes_a_ready_child_once_and_counts_hits_and_misses(selector) -> None:
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    template = p.templates[0]
    filling = fake_warm(p, template, ready=False)
    ready = fake_warm(p, template, ready=True)
    assert not p.wants_fill()  # two cloned: the size, ready or not
    assert p.claim(spec()) is ready
    assert p.claim(spec()) is None  # the other is still filling
    assert p.claim(spec(mounts=(Mount("tmpfs", "/x"),))) is None
    assert (p.counts.hits, p.counts.misses) == (1, 2)
    assert p.children == [filling]
    assert p.wants_fill()  # one short again
    for warm in (ready, filling):
        warm.channel.close()
        os.close(warm.pidfd)


def test_a_claim_owes_a_fill_on_a_busy_turn_until_the_demand_outruns_the_fills(
    selector, monkeypatch
) -> None:
    monkeypatch.setattr(pool, "FILL_DELAY", 0.0)  # the delay: the next test
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    template = p.templates[0]
    made: list[pool.Warm] = []
    p._clone = lambda t: made.append(fake_warm(p, t, ready=False))  # type: ignore[method-assign,assignment]
    first = fake_warm(p, template, ready=True)
    second = fake_warm(p, template, ready=True)
    assert not p.fill_due(idle=True)  # full
    assert p.claim(spec()) is first
    assert p.fill_due(idle=False)  # a busy turn: its replacement is owed
    assert p.fill_one()
    assert not p.fill_due(idle=False)  # paid; the pool is full again
    assert p.claim(spec()) is second
    assert p.fill_due(idle=False)
    # Only children still filling: the launch goes cold, and from now on a
    # busy turn fills nothing (a pooled launch costs more CPU than a cold
    # one when the fills cannot keep up) ...
    assert p.claim(spec()) is None
    assert not p.fill_due(idle=False)
    p.children[0].ready = True
    assert p.claim(spec()) is not None
    assert not p.fill_due(idle=False)
    # ... until the loop is idle again.
    assert p.fill_due(idle=True)
    for warm in (first, second, *made):
        warm.channel.close()
        os.close(warm.pidfd)


def test_a_fill_waits_a_while_after_a_claim_while_a_child_is_ready(selector, monkeypatch) -> None:
    """What the claim started (the container's exit, the reply to its wait)
    goes before a clone in the loop, unless a template has no ready child."""
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    template = p.templates[0]
    first = fake_warm(p, template, ready=True)
    second = fake_warm(p, template, ready=True)
    assert p.claim(spec()) is first
    assert p.fill_timeout() == pytest.approx(pool.FILL_DELAY)
    assert not p.fill_due(idle=False) and not p.fill_due(idle=True)
    clock[0] += pool.FILL_DELAY / 2
    assert p.fill_timeout() == pytest.approx(pool.FILL_DELAY / 2)
    clock[0] += pool.FILL_DELAY
    assert p.fill_timeout() == 0 and p.fill_due(idle=False)
    # No ready child left: fill at once.
    assert p.claim(spec()) is second
    assert p.fill_timeout() == 0 and p.fill_due(idle=False)
    for warm in (first, second):
        warm.channel.close()
        os.close(warm.pidfd)


def test_a_template_is_given_up_after_failures_in_a_row(selector) -> None:
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(TEMPLATE, 1)])
    for _ in range(pool.MAX_FAILURES):
        assert p.wants_fill()
        p._failed(p.templates[0], "a fill step failed")
    assert not p.wants_fill()


def test_no_pool_where_counters_cannot_be_reset(selector, tmp_path) -> None:
    manager = cgroups.V2Manager(str(tmp_path), "mydocker-x", "/")
    p = pool.Pool(selector, manager)
    p.configure([poolkeys.Template(TEMPLATE, 4)])
    assert p.templates == [] and not p.wants_fill()
    with pytest.raises(cgroups.CgroupError):
        manager.adopt(manager.open("pool-1-1"), spec().limits)
    with pytest.raises(cgroups.CgroupError):
        manager.rename(manager.open("pool-1-1"), "c1")


def test_a_changed_host_view_makes_the_pool_follow_it(selector) -> None:
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    stale = fake_warm(p, p.templates[0], ready=True)
    stale_channel, stale_pidfd = stale.channel, stale.pidfd
    p.discard = lambda warm, kill=True: p.children.remove(warm)  # type: ignore[method-assign]
    changed = spec(rootfs=RootfsPlan(root="/r", layer="/l", binds=("/usr",), masks=("/etc/x",)))
    assert p.claim(changed) is None  # a miss: the ready child has the old view
    [template] = p.templates
    assert template.size == 2 and template.spec.rootfs is not None
    assert template.spec.rootfs.masks == ("/etc/x",)
    assert template.spec.rootfs.layer == PLAN.layer  # still the pool's mount point
    assert p.children == []  # the old view's children went
    wanted = poolkeys.key(changed)
    have = poolkeys.key(template.spec)
    assert wanted is not None and have is not None and poolkeys.fits(have, wanted)
    # An unrelated miss (more capabilities) leaves the template alone.
    more_caps = Security(capabilities=("SYS_ADMIN",))
    assert p.claim(dataclasses.replace(changed, security=more_caps)) is None
    assert p.templates == [template]
    stale_channel.close()
    os.close(stale_pidfd)


#: The host image binds /etc read-only: the /etc files are bound over files
#: there, which a child with the whole root may do (viewtrees.shareable).
ETC_PLAN = dataclasses.replace(PLAN, binds=("/usr", "/etc"))
ETC_TEMPLATE = dataclasses.replace(TEMPLATE, rootfs=ETC_PLAN)


def on_bridge(**changes: object) -> ContainerSpec:
    plan = RootfsPlan(root="/s/c/1/layer/root", layer="/s/c/1/layer", binds=("/usr", "/etc"))
    return spec(rootfs=plan, network=CONNECTED, **changes)


def test_a_bridge_launch_fits_only_a_bridge_template() -> None:
    bridged = poolkeys.key(on_bridge())  # its /etc binds are no user mounts
    plain = poolkeys.key(ETC_TEMPLATE)
    ready = poolkeys.key(dataclasses.replace(ETC_TEMPLATE, network=poolkeys.BRIDGE_READY))
    assert bridged is not None and plain is not None and ready is not None
    assert poolkeys.fits(ready, bridged) and not poolkeys.fits(plain, bridged)
    only_lo = poolkeys.key(spec(rootfs=ETC_PLAN))
    assert only_lo is not None and not poolkeys.fits(ready, only_lo)


def test_the_first_bridge_miss_adds_a_bridge_template_of_the_same_size(selector) -> None:
    p = pool.Pool(selector, None)
    p.configure([poolkeys.Template(ETC_TEMPLATE, 3)])
    assert p.claim(on_bridge()) is None
    plain, bridged = p.templates
    assert plain.spec == ETC_TEMPLATE and bridged.size == 3
    assert bridged.spec == dataclasses.replace(ETC_TEMPLATE, network=poolkeys.BRIDGE_READY)
    assert p.claim(on_bridge()) is None  # filling: no third template
    assert len(p.templates) == 2 and p.counts.misses == 2
    ready = fake_warm(p, bridged, ready=True)
    # A ``none`` launch never takes a child with a veth.
    assert p.claim(spec(rootfs=ETC_PLAN)) is None
    assert p.claim(on_bridge()) is ready and p.counts.hits == 1
    ready.channel.close()
    os.close(ready.pidfd)


def test_each_images_first_bridge_miss_adds_its_bridge_template(selector, tmp_path) -> None:
    p = pool.Pool(selector, None, layers=PoolLayers(str(tmp_path)))
    p.configure([poolkeys.Template(ETC_TEMPLATE, 3), poolkeys.Template(BUSYBOX, 2)])
    assert p.claim(on_bridge()) is None  # the host image's
    assert [t.size for t in p.templates] == [3, 2, 3]
    busybox_bridge = busybox(network=CONNECTED)
    assert p.claim(busybox_bridge) is None  # busybox's: one more
    host, box, host_bridged, box_bridged = p.templates
    assert (host.spec, box.spec) == (ETC_TEMPLATE, BUSYBOX)
    assert box_bridged.spec == dataclasses.replace(BUSYBOX, network=poolkeys.BRIDGE_READY)
    assert box_bridged.size == 2
    assert p.claim(busybox_bridge) is None and len(p.templates) == 4  # no fifth
    wanted = poolkeys.key(busybox_bridge)
    assert box_bridged.key is not None and wanted is not None
    assert poolkeys.fits(box_bridged.key, wanted) and not poolkeys.fits(host_bridged.key, wanted)


class Inside:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_bridge_child_is_ready_once_its_veth_is_parked(
    selector, monkeypatch: pytest.MonkeyPatch
) -> None:
    parked: list[int] = []
    insides: list[Inside] = []

    class Plumber:
        fail = False

        def park(self, pid: int) -> Parked:
            if self.fail:
                raise OSError(1, "create veth: Operation not permitted")
            parked.append(pid)
            insides.append(Inside())
            return Parked(4, 2, insides[-1])  # type: ignore[arg-type]

    plumber = Plumber()
    p = pool.Pool(selector, None, plumber=plumber)  # type: ignore[arg-type]
    p.configure(
        [poolkeys.Template(dataclasses.replace(TEMPLATE, network=poolkeys.BRIDGE_READY), 2)]
    )
    monkeypatch.setattr(os, "waitid", lambda *args: None)  # no process to reap
    monkeypatch.setattr(signal, "pidfd_send_signal", lambda *args: None)
    for fail in (False, True):
        plumber.fail = fail
        warm = says_ready(p, 1, None)
        assert warm.ready is not fail and (warm in p.children) is not fail
    assert parked == [1] and p.counts.failures == {poolkeys.key(p.templates[0].spec): 1}
    [kept] = p.children
    assert [i.closed for i in insides] == [False]
    p.discard(kept)  # unclaimed: the socket that holds its namespace closed too
    assert [i.closed for i in insides] == [True]


def test_a_ready_childs_counters_are_reset_and_a_failed_reset_discards_it(
    selector, tmp_path, monkeypatch
) -> None:
    """Its fill's CPU time and peak are not its container's: reset when it
    says READY (Manager.reset), off the claim's path."""
    fs = FakeCgroupFs(str(tmp_path / "cgroup"), "v1")
    fs.make_root()
    manager = cgroups.V1Manager(fs.root, "mydocker-0123", {}, fs, kill=fs.kill)
    p = pool.Pool(selector, manager)
    p.configure([poolkeys.Template(TEMPLATE, 2)])
    monkeypatch.setattr(os, "waitid", lambda *args: None)  # no process to reap
    monkeypatch.setattr(signal, "pidfd_send_signal", lambda *args: None)

    def refusing(write):
        def refuse(path: str, text: str) -> None:
            if path.endswith("cpuacct.usage"):
                raise PermissionError(1, "Operation not permitted", path)
            write(path, text)

        return refuse

    for number, refused in ((1, False), (2, True)):
        cgroup = manager.create(f"pool-1-{number}", Limits())
        fs.put(cgroup.dirs["cpuacct"], "cpuacct.usage", "5000000\n")
        if refused:  # a reset that fails: the kernel refuses the write
            monkeypatch.setattr(fs, "write", refusing(fs.write))
        warm = says_ready(p, number, cgroup)
        assert warm.ready is not refused and (warm in p.children) is not refused
        if not refused:
            assert cgroup.stats(live=False).cpu_seconds == 0
    assert p.counts.failures == {poolkeys.key(p.templates[0].spec): 1}
    [kept] = p.children
    kept.channel.close()
    os.close(kept.pidfd)
