"""``Planner``: a ``CreateRequest`` → the ``ContainerSpec`` the launcher runs.

    with_image_defaults  the request with its image's config under it (runtime/imagedefaults.py)
    container_spec   the whole ContainerSpec: defaults, limits, security, mounts, root
    security         the spec's security part (user, capabilities, seccomp, userns),
                     from the request's ``SecurityRequest``
    check_mounts     what only the host can tell: sources that exist and may be shown
    check_options    the same for the options: CPUs and nodes that exist, device
                     nodes, swap above memory, no hostname with the host's UTS
    plan_rootfs      where the root goes: the host image's curated view
                     (runtime/images/hostview.py), or an overlay on an image
    make_root_dirs   the directories that plan needs, made once the container is admitted
    pool_template    the spec the launcher's warm pool fills children for
    pool_templates   those of every image the pool keeps warm, with their counts

Every bad value raises ``InvalidArgument`` naming its field, before anything
is recorded or made.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runtime import imagedefaults
from runtime.errors import InvalidArgument, NotFound
from runtime.images import Image, ImageStore
from runtime.images.hostview import HostView
from runtime.layout import Layout
from runtime.options import parse_cpuset
from runtime.security import capabilities, identity
from runtime.spec import (
    DEFAULT_IMAGE,
    LAYER_ROOT,
    LAYER_RW,
    SECCOMP_PROFILES,
    USERNS_SIZE,
    ContainerSpec,
    CreateRequest,
    InvalidField,
    Limits,
    Mount,
    RootfsPlan,
    Security,
    SecurityRequest,
    under,
)

log = logging.getLogger("mydocker.runtime")

#: Mount targets that would undo the masked and read-only paths (runtime.rootfs).
FORBIDDEN_TARGETS = ("/proc", "/sys")


@dataclass(frozen=True)
class Planner:
    """``userns_range`` is (first host id, count) for ``userns`` containers;
    ``default_limits`` fill the limits a create leaves unset; ``host_view``
    is what the ``host`` image shows."""

    layout: Layout
    images: ImageStore
    host_view: HostView
    userns_range: tuple[int, int]
    default_limits: Limits

    def with_image_defaults(
        self, request: CreateRequest, inherited: Sequence[Mount] = ()
    ) -> CreateRequest:
        """The request with the command, env, workdir, user, labels, volumes
        and stop signal its image's config gives where it leaves them unset
        (``inherited``: the mounts of its ``volumes_from``)."""
        image = self.images.get(request.image or DEFAULT_IMAGE)
        return imagedefaults.apply(request, image, inherited)

    def container_spec(
        self, container_id: str, request: CreateRequest, security: Security
    ) -> ContainerSpec:
        """The spec of a new container; its limits are the request's over the defaults."""
        found = self.images.get(request.image or DEFAULT_IMAGE)
        workdir = request.workdir or "/"
        self.check_mounts(found, request.mounts, workdir)
        try:
            effective = request.limits.over(self.default_limits)
            # The CPUs this process may run on (sched_getaffinity(2)), as Docker counts.
            cpu_count = len(os.sched_getaffinity(0))
            if effective.cpus is not None and effective.cpus > cpu_count:
                raise InvalidField(
                    "limits.cpus", f"must be at most {cpu_count}, the CPUs this machine has"
                )
            check_options(request, effective)
            hostname = request.hostname or container_id[:12]
            if request.options.shares("uts"):
                hostname = socket.gethostname()
            return ContainerSpec(
                command=tuple(request.command),
                hostname=hostname,
                env=dict(request.env),
                workdir=workdir,
                security=security,
                labels=dict(request.labels),
                auto_remove=request.auto_remove,
                tty=request.tty,
                stdin=request.stdin,
                stdin_once=request.stdin_once,
                limits=effective,
                image=_shown_name(found, request.image),
                image_id=found.id,
                read_only=request.read_only,
                mounts=tuple(request.mounts),
                init=request.init,
                restart_policy=request.restart_policy,
                options=request.options,
                rootfs=self.plan_rootfs(
                    found,
                    self.layout.container_dir(container_id),
                    request.read_only,
                    security.userns_host_id,
                ),
            )
        except InvalidField as err:
            raise InvalidArgument(err.field, err.message) from err
        except (ValueError, TypeError) as err:
            raise InvalidArgument("spec", str(err)) from err

    def security(self, asked: SecurityRequest) -> Security:
        """The spec's security part, each bad value named by its field."""
        seccomp = asked.seccomp
        fields: dict[str, Any] = {
            "seccomp": seccomp,
            "no_new_privileges": asked.no_new_privileges,
        }
        for name, names in (("cap_add", asked.cap_add), ("cap_drop", asked.cap_drop)):
            for cap in names:
                try:
                    capabilities.normalize(cap)
                except ValueError as err:
                    raise InvalidArgument(name, str(err)) from err
        fields["capabilities"] = capabilities.resolve(asked.cap_add, asked.cap_drop)
        if asked.user is not None:
            try:
                who = identity.parse(asked.user)
            except ValueError as err:
                raise InvalidArgument("user", str(err)) from err
            fields["uid"], fields["gid"] = who.uid, who.gid
        if seccomp not in SECCOMP_PROFILES:
            raise InvalidArgument("seccomp", f"must be one of {', '.join(SECCOMP_PROFILES)}")
        if asked.userns:
            fields["userns_host_id"] = self.userns_range[0]
            if max(fields.get("uid", 0), fields.get("gid", 0)) >= USERNS_SIZE:
                raise InvalidArgument("user", f"with userns, ids must be below {USERNS_SIZE}")
        return Security(**fields)

    def check_mounts(self, image: Image, mounts: Sequence[Mount], workdir: str) -> None:
        """What only the host can tell: do sources exist, may they be shown?"""
        state_dir = self.layout.state_dir
        host = image.is_host
        for index, mount in enumerate(mounts):
            field = f"mounts.{index}"
            if under(mount.target, FORBIDDEN_TARGETS):
                raise InvalidArgument(
                    f"{field}.target",
                    f"{mount.target} is under /proc or /sys, whose masks it could undo",
                )
            if mount.source is not None and mount.type == "bind":
                if not os.path.exists(mount.source):
                    raise InvalidArgument(f"{field}.source", f"{mount.source} does not exist")
                if under(os.path.realpath(mount.source), [state_dir]):
                    raise InvalidArgument(
                        f"{field}.source",
                        f"{mount.source} is inside the service's state dir, "
                        "which containers may not see",
                    )
            if host and not self.host_path_ok(mount.target):
                raise InvalidArgument(
                    f"{field}.target",
                    f"{mount.target} does not exist in the host image's read-only "
                    f"{self._host_dir(mount.target)}: use an existing path there, any path "
                    "outside it, or another image",
                )
        if host and not self.host_path_ok(workdir):
            raise InvalidArgument(
                "workdir",
                f"{workdir} does not exist in the host image's read-only "
                f"{self._host_dir(workdir)} and cannot be created there: use an existing "
                "directory there, any path outside it, or another image",
            )

    def host_path_ok(self, path: str) -> bool:
        """A path of the host view's own tmpfs is made on demand; one in a
        read-only host directory must exist there (runtime/images/hostview.py)."""
        if not self.host_view.shows(path):
            return True
        return os.path.exists(path) and not under(os.path.realpath(path), [self.layout.state_dir])

    def _host_dir(self, path: str) -> str:
        return next(d for d in self.host_view.binds if under(path, [d]))

    def plan_rootfs(
        self, image: Image, cdir: str, read_only: bool, userns_host_id: int | None
    ) -> RootfsPlan:
        layer = os.path.join(cdir, "layer")
        if image.is_host:
            view = self.host_view
            state_dir = self.layout.state_dir
            if userns_host_id is None:
                # One mount point for all: each child mounts its root there
                # in its own mount namespace (mount_namespaces(7)), as the
                # warm pool's children do; two directories fewer to make and
                # remove per container (docs/performance.md, "A launch's
                # files").  A user namespace's root gets its own, chowned.
                layer = self.layout.host_layer
            return RootfsPlan(
                root=os.path.join(layer, LAYER_ROOT),
                layer=layer,
                binds=view.binds,
                links=view.links,
                masks=view.masks(),
                hide=(state_dir,) if view.shows(state_dir) else (),
            )
        lowers = image.lowers
        if userns_host_id is not None:
            lowers = self.images.shifted_lowers(image, userns_host_id, USERNS_SIZE)
        return RootfsPlan(
            root=os.path.join(layer, LAYER_ROOT),
            lower=lowers[0],
            more_lowers=lowers[1:],
            layer=layer,
            read_only=read_only,
        )


def _shown_name(image: Image, asked: str | None) -> str:
    """What a container shows as its image: a pulled one as asked for, word
    for word (Docker's ``Config.Image``: ``alpine`` stays ``alpine``, an id an
    id), the others by their store name."""
    if image.kind != "pulled" or not asked:
        return image.name
    return asked


#: The NUMA nodes this machine has (cpuset(7) lists them the same way).
NODES_ONLINE = "/sys/devices/system/node/online"


def _online_nodes() -> set[int]:
    try:
        with open(NODES_ONLINE) as f:
            return parse_cpuset(f.read().strip(), "nodes")
    except (OSError, InvalidField):
        return {0}


def check_options(request: CreateRequest, limits: Limits) -> None:
    """What only the host can tell about ``request.options``, and the
    combinations Docker refuses too (its wording in brackets): raises
    ``InvalidField`` naming the field."""
    options, tuning = request.options, request.options.tuning
    if request.hostname and options.shares("uts"):
        raise InvalidField("hostname", "cannot be set with the host's UTS namespace")
    # Asked of the host only when the field is set: most launches set neither,
    # and reading /sys for each was 1–2% of the API's time per launch.
    available_of: tuple[tuple[str, str | None, Callable[[], set[int]]], ...] = (
        ("cpuset_cpus", tuning.cpuset_cpus, lambda: set(os.sched_getaffinity(0))),
        ("cpuset_mems", tuning.cpuset_mems, _online_nodes),
    )
    for name, text, available in available_of:
        if text is not None:
            missing = parse_cpuset(text, f"options.tuning.{name}") - available()
            if missing:
                raise InvalidField(
                    f"options.tuning.{name}", f"{sorted(missing)} not available on this machine"
                )
    if limits.cpus is not None and (tuning.cpu_quota_us or tuning.cpu_period_us):
        raise InvalidField("options.tuning.cpu_quota_us", "conflicts with limits.cpus (NanoCpus)")
    swap = tuning.memory_swap_bytes
    if swap is not None and swap != -1:
        if limits.memory_bytes is None:
            raise InvalidField("options.tuning.memory_swap_bytes", "needs limits.memory_bytes")
        if swap < limits.memory_bytes:
            raise InvalidField(
                "options.tuning.memory_swap_bytes", "must be at least limits.memory_bytes"
            )
    for device in options.devices:
        try:
            mode = os.stat(device.host).st_mode
        except OSError:
            raise InvalidField("options.devices", f"{device.host} does not exist") from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise InvalidField("options.devices", f"{device.host} is not a device node")


def pool_template(planner: Planner, image: str) -> ContainerSpec:
    """The spec a warm pool fills children for (runtime/launcher/pool.py):
    a default container of ``image`` whose root is mounted under the
    state dir's ``pool/layer`` (each child in its own mount namespace, so
    they all share the one mount point); made here with its directories."""
    request = CreateRequest(("true",), image=image)
    spec = planner.container_spec("pool", request, planner.security(SecurityRequest()))
    layer = os.path.join(planner.layout.state_dir, "pool", "layer")
    os.makedirs(os.path.join(layer, LAYER_ROOT), mode=0o700, exist_ok=True)
    assert spec.rootfs is not None
    plan = dataclasses.replace(spec.rootfs, root=os.path.join(layer, LAYER_ROOT), layer=layer)
    return dataclasses.replace(spec, rootfs=plan)


def pool_templates(
    planner: Planner, sizes: Sequence[tuple[str, int]]
) -> list[tuple[ContainerSpec, int]]:
    """The warm pool's templates and how many children of each: one per
    image named in ``sizes`` (a later count of an image replaces an earlier
    one; 0 drops it).  An image the store does not hold is left out, logged:
    it is not pulled for a pool."""
    counts = dict(sizes)
    templates: list[tuple[ContainerSpec, int]] = []
    for image, size in counts.items():
        if size <= 0:
            continue
        try:
            templates.append((pool_template(planner, image), size))
        except NotFound:
            log.warning("no warm pool for image %s: not in the image store", image)
    return templates


def make_root_dirs(plan: RootfsPlan | None, owner: int | None) -> None:
    """The root's mount point and the overlay's layer dirs (runtime.rootfs).

    With a user namespace they belong to its root (host uid ``owner``),
    which mounts the overlay and writes its upper dir."""
    if plan is None or plan.layer is None:
        return
    if plan.lower is None and owner is None:
        # The host view's shared mount point (``Layout.host_layer``): made
        # by the first container that needs it, then only looked at.
        os.makedirs(plan.root, 0o700, exist_ok=True)
        return
    dirs = [plan.layer, plan.root]
    if plan.lower is not None:
        rw = os.path.join(plan.layer, LAYER_RW)
        dirs.append(rw)
        if not plan.read_only:
            dirs += [os.path.join(rw, "upper"), os.path.join(rw, "work")]
    for path in dirs:
        os.mkdir(path, 0o700)
        if owner is not None:
            os.chown(path, owner, owner)
