"""The container's root filesystem, assembled by the child in its own mount namespace.

``steps(spec)`` gives the named steps ``runtime.child`` runs right after
"make mounts private", in this order:

1. enter the layer dir; clone every bind source (and the host's /dev/null,
   /dev/zero, ...) with open_tree(2): detached mounts that can be attached
   after step 3, when the host's tree is no longer reachable.  For ``host``
   the view's directories come ready from the launcher, /etc's masks in
   (runtime/images/viewtrees.py), or are cloned here where it cannot;
2. mount the root at ``plan.root``: an overlay (image = lower layer(s), a
   per-container upper/work dir = writable layer) or, for ``host``, the host
   view (runtime/images/hostview.py): a tmpfs with a skeleton of empty
   directories and the read-only binds of the host's /usr, /etc, ...; then a
   fresh /proc and /sys in it;
3. pivot_root(2) into the new root and detach the old one (``pivot_root(".",
   ".")`` then ``umount2(".", MNT_DETACH)``, as runc does; no put_old directory
   is needed, so a read-only root works).  Never chroot(2), which root can
   escape.  From here on every path resolves inside the container's root,
   so a symlink in an image cannot point a mount at the host;
4. a minimal /dev on tmpfs (the six standard device nodes made with
   mknod(2), or in a user namespace bound from the host's; a new devpts
   instance, /dev/shm), and for ``host`` private
   tmpfs on /tmp, /run, /var/tmp, the masks of /etc (what other may not read)
   and an empty tmpfs over the service's state dir if the view has it;
5. the user's mounts, then Docker's masked and read-only paths
   (``runtime.security.paths.protect``: /dev/null over files, an empty
   read-only tmpfs over directories; /proc/sys and friends bound read-only);
6. create the workdir; for ``host`` and with ``read_only`` remount the root
   read-only last, after the mount points and the workdir exist.

All of it lives in the container's mount namespace and disappears with its
last process: nothing is mounted in the host's namespace.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping

from runtime import init, libc
from runtime.images.builtin import HOST_TMPFS
from runtime.images.hostview import ROOT_SIZE, SKELETON
from runtime.images.viewtrees import ROOT
from runtime.options import SHM_SIZE
from runtime.security import paths
from runtime.spec import LAYER_ROOT, LAYER_RW, ContainerSpec, Mount, RootfsPlan

Step = tuple[str, Callable[[], None]]

#: The standard nodes of every container's /dev and their numbers (the
#: kernel's Documentation/admin-guide/devices.txt), which the devices cgroup
#: allows (runtime/security/devices.py).
DEVICES: dict[str, tuple[int, int]] = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
DEV_LINKS = {
    "ptmx": "pts/ptmx",
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
#: The tmpfs that holds upper/work of a read_only container during set-up.
READ_ONLY_LAYER_SIZE = 1 << 20

_PROC_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def steps(spec: ContainerSpec, view: Mapping[str, int] | None = None) -> list[Step]:
    """The named steps that build ``spec``'s root, for ``runtime.child``.

    ``view``: for the ``host`` image, the launcher's copies of the view's
    trees by path, masks in (runtime/images/viewtrees.py); without it the
    child clones the directories and mounts the masks itself."""
    return prepared_steps(spec, view) + finishing_steps(spec)


def prepared_steps(spec: ContainerSpec, view: Mapping[str, int] | None = None) -> list[Step]:
    """Steps 1-5: all but the workdir and the read-only remount, which a
    pooled child (runtime/pooled.py) runs only once it has its spec."""
    assert spec.rootfs is not None
    return _Assembly(spec, spec.rootfs, view).steps()


def finishing_steps(spec: ContainerSpec) -> list[Step]:
    """Step 6: the workdir, then the root read-only (host, ``read_only``)."""
    assert spec.rootfs is not None
    result: list[Step] = []
    if spec.workdir != "/":
        result.append((f"create workdir {spec.workdir}", lambda: _make_workdir(spec.workdir)))
    if spec.rootfs.read_only or spec.rootfs.lower is None:
        result.append(("make the root read-only", _root_read_only))
    return result


class _Assembly:
    """State shared by the steps: the open_tree fds taken before pivot_root."""

    def __init__(
        self, spec: ContainerSpec, plan: RootfsPlan, view: Mapping[str, int] | None
    ) -> None:
        self.spec = spec
        self.plan = plan
        #: open_tree fds by key: "/dev/null", ..., "mount N" for the Nth mount
        #: (two mounts may bind the same source), "view /usr", ...
        self.trees: dict[str, int] = {f"view {path}": fd for path, fd in (view or {}).items()}
        #: Whether the view's trees came from the launcher, masks in.
        self.prepared_view = view is not None
        self.lower_fd = -1
        self.more_lower_fds: list[int] = []

    def steps(self) -> list[Step]:
        plan, spec = self.plan, self.spec
        host = plan.lower is None
        userns = spec.security.userns_host_id is not None
        # user_namespaces(7): the child keeps the host uid 0 it was cloned
        # with, which the new namespace does not map: creating a file fails
        # with EOVERFLOW, and overlayfs refuses the mount, until the child
        # becomes the namespace's own root (host uid userns_host_id).  That
        # uid cannot walk the state dir (0700), so an overlay root is built
        # from the layer dir as the cwd and the lower dir as an fd, both
        # taken while the child is still host root.
        become_root: Step = ("become root of the user namespace", _become_userns_root)
        result: list[Step] = [("enter the container's layer dir", self.enter_layer)]
        # Bind sources (and in a user namespace the device nodes) are cloned
        # while the child is still host root (it can walk any path), as
        # detached mounts to attach later.
        if userns:
            for device in DEVICES:
                path = f"/dev/{device}"
                result.append((f"clone {path}", self._clone(path, path, False, False)))
        for index, mount in enumerate(spec.all_mounts()):
            # A volume is a bind of its data directory (runtime/volumes.py).
            if mount.type in ("bind", "volume"):
                assert mount.source is not None
                clone = self._clone(f"mount {index}", mount.source, True, mount.read_only)
                result.append((f"clone {mount.source}", clone))
        for given in spec.options.devices:
            clone = self._clone(f"device {given.target}", given.host, False, False)
            result.append((f"clone {given.host}", clone))
        if not self.prepared_view:
            for path in plan.binds:
                result.append((f"clone {path}", self._clone(f"view {path}", path, True, True)))
        if spec.init:
            result.append((f"clone {init.TINI}", self._clone(init.TARGET, init.TINI, False, True)))
        if userns:
            result.append(become_root)
        result += [
            (f"mount the root ({spec.image})", self.mount_root),
            # Before pivot_root: in a user namespace the kernel lets a new proc
            # or sysfs be mounted only while a full one is visible (the host's;
            # mount_too_revealing() in fs/namespace.c), as runc does too.
            ("mount /proc", lambda: self._kernel_fs("proc", "proc", _PROC_FLAGS)),
            ("mount /sys", lambda: self._kernel_fs("sysfs", "sys", _PROC_FLAGS | libc.MS_RDONLY)),
        ]
        result.append(("pivot_root", self.pivot))
        result += self._dev_steps(userns)
        if spec.init:
            result.append((f"bind {init.TARGET}", self._bind_device(init.TARGET[len("/dev/") :])))
        if host:
            for path, mode in HOST_TMPFS.items():
                result.append((f"mount tmpfs {path}", self._host_tmpfs(path, mode)))
            if not self.prepared_view:
                for path in plan.masks:
                    result.append((f"mask {path}", _call(paths.mask, path)))
            for path in plan.hide:
                result.append((f"hide {path}", self._hide(path)))
        for index, mount in enumerate(spec.all_mounts()):
            result.append((f"mount {mount.target}", self._user_mount(index, mount)))
        result.append(("mask /proc and /sys paths", paths.protect))
        return result

    def _dev_steps(self, userns: bool) -> list[Step]:
        """/dev: a tmpfs, the six nodes (made, or in a user namespace bound),
        devpts, /dev/shm, the links, the devices the spec names."""
        return [
            ("mount /dev", self.mount_dev),
            *(
                [(f"bind /dev/{d}", self._bind_device(d)) for d in DEVICES]
                if userns
                else [("make /dev nodes", _make_dev_nodes)]
            ),
            ("mount /dev/pts", self.mount_devpts),
            ("mount /dev/shm", self.mount_shm),
            ("make /dev links", self.dev_links),
            *[(f"bind {d.target}", self._bind_device(d.target)) for d in self.spec.options.devices],
        ]

    # -- before pivot_root: the cwd is the new root once it is mounted -------
    def enter_layer(self) -> None:
        assert self.plan.layer is not None
        os.chdir(self.plan.layer)
        if self.plan.lower is not None:
            self.lower_fd = os.open(self.plan.lower, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self.more_lower_fds = [
                os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                for path in self.plan.more_lowers
            ]

    def mount_root(self) -> None:
        plan = self.plan
        if plan.lower is None:
            self.mount_host_view()
            return
        # The cwd is the layer dir: root/ (the mount point) and rw/ (upper/,
        # work/), which for read_only is a small tmpfs instead of disk.
        if plan.read_only:
            libc.mount(
                "tmpfs",
                LAYER_RW,
                "tmpfs",
                libc.MS_NOSUID | libc.MS_NODEV,
                f"size={READ_ONLY_LAYER_SIZE},mode=0700",
            )
        upper, work = f"{LAYER_RW}/upper", f"{LAYER_RW}/work"
        for path in (upper, work):
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
        # The merged root directory takes the upper dir's owner and mode.
        lower_stat = os.fstat(self.lower_fd)
        os.chown(upper, lower_stat.st_uid, lower_stat.st_gid)
        os.chmod(upper, lower_stat.st_mode & 0o7777)
        # overlayfs(5); userxattr: an overlay mounted in a user namespace keeps
        # its own metadata in user.overlay.* xattrs (trusted.* needs host root).
        # A layered image stacks its layers top first (overlayfs(5): "lowerdir=
        # top:…:bottom"); the options are one page, which fd paths fit for
        # some 200 layers.
        lowers = ":".join(f"/proc/self/fd/{fd}" for fd in [self.lower_fd, *self.more_lower_fds])
        options = f"lowerdir={lowers},upperdir={upper},workdir={work}"
        if self.spec.security.userns_host_id is not None:
            options += ",userxattr"
        libc.mount("overlay", LAYER_ROOT, "overlay", 0, options)
        for fd in [self.lower_fd, *self.more_lower_fds]:
            os.close(fd)
        os.chdir(LAYER_ROOT)

    def mount_host_view(self) -> None:
        """The host image's root: a tmpfs with read-only binds of the host's
        system directories (runtime/images/hostview.py), never the host's ``/``.

        The binds were cloned with open_tree(2) while the child was host root
        and made read-only all the way down with mount_setattr(2)
        (``AT_RECURSIVE``): their submounts, locked to them in a user
        namespace (mount_namespaces(7)), come along read-only too.  Where the
        launcher gave the whole root ready (runtime/images/viewtrees.py,
        ``shareable``), it is attached as it is."""
        whole = self.trees.pop(f"view {ROOT}", -1)
        if whole >= 0:
            try:
                libc.move_mount(whole, LAYER_ROOT)
            finally:
                os.close(whole)
            os.chdir(LAYER_ROOT)
            return
        libc.mount(
            "tmpfs",
            LAYER_ROOT,
            "tmpfs",
            libc.MS_NOSUID | libc.MS_NODEV,
            f"size={ROOT_SIZE},mode=0755",
        )
        os.chdir(LAYER_ROOT)
        for path, mode in SKELETON.items():
            os.mkdir(path[1:], mode)
            os.chmod(path[1:], mode)  # mkdir(2) applies the umask
        for path, target in self.plan.links:
            os.symlink(target, path[1:])
        for path in self.plan.binds:
            os.makedirs(path[1:], 0o755, exist_ok=True)
            fd = self.trees.pop(f"view {path}")
            try:
                libc.move_mount(fd, path[1:])
            finally:
                os.close(fd)

    def _clone(self, key: str, path: str, recursive: bool, read_only: bool) -> Callable[[], None]:
        def clone() -> None:
            fd = libc.open_tree(path, recursive=recursive)
            self.trees[key] = fd
            if read_only:
                libc.mount_setattr("", libc.MOUNT_ATTR_RDONLY, recursive=True, dirfd=fd)

        return clone

    def pivot(self) -> None:
        # pivot_root(2): "new_root and put_old may be the same directory";
        # the old root is then stacked on "." (the cwd, the new root) and
        # detached right away.
        libc.pivot_root(".", ".")
        libc.umount2(".", libc.MNT_DETACH)
        os.chdir("/")

    def _kernel_fs(self, fstype: str, name: str, flags: int) -> None:
        path = name  # relative to the cwd, the new root
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o555)
        else:
            if not stat.S_ISDIR(st.st_mode):  # an image's symlink must not aim this at the host
                raise OSError(errno.ENOTDIR, f"/{name} in the image is not a directory")
        libc.mount(fstype, path, fstype, flags)

    # -- after pivot_root: every path is inside the container ---------------
    def mount_dev(self) -> None:
        _ensure_dir("/dev", 0o755)
        libc.mount(
            "tmpfs", "/dev", "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k"
        )

    def _bind_device(self, device: str) -> Callable[[], None]:
        # In a user namespace the standard nodes are bound from the host's:
        # mknod(2) of a device is refused there (user_namespaces(7)), a bind
        # is not.  The devices a spec names (``--device``) are bound always.
        def bind() -> None:
            path = device if device.startswith("/dev/") else f"/dev/{device}"
            key = path if path in self.trees else f"device {path}"
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            fd = self.trees.pop(key)
            try:
                libc.move_mount(fd, path)
            finally:
                os.close(fd)

        return bind

    def mount_devpts(self) -> None:
        # devpts(5): a new instance, so the container sees only its own ptys.
        os.mkdir("/dev/pts", 0o755)
        libc.mount(
            "devpts",
            "/dev/pts",
            "devpts",
            libc.MS_NOSUID | libc.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        )

    def mount_shm(self) -> None:
        os.mkdir("/dev/shm", 0o1777)
        libc.mount(
            "tmpfs",
            "/dev/shm",
            "tmpfs",
            libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
            f"mode=1777,size={self.spec.options.shm_size_bytes or SHM_SIZE}",
        )

    def dev_links(self) -> None:
        for name, target in DEV_LINKS.items():
            os.symlink(target, f"/dev/{name}")

    def _host_tmpfs(self, path: str, mode: int) -> Callable[[], None]:
        def mount() -> None:
            libc.mount("tmpfs", path, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, f"mode={mode:o}")

        return mount

    def _hide(self, path: str) -> Callable[[], None]:
        def hide() -> None:
            if os.path.isdir(path):  # e.g. not when it was under /tmp
                libc.mount(
                    "tmpfs",
                    path,
                    "tmpfs",
                    libc.MS_RDONLY | _PROC_FLAGS,
                    "size=4k,mode=0755",
                )

        return hide

    def _user_mount(self, index: int, mount: Mount) -> Callable[[], None]:
        def attach() -> None:
            target = mount.target
            if mount.type in ("bind", "volume"):
                assert mount.source is not None
                fd = self.trees.pop(f"mount {index}")
                try:
                    ensure_target(target, is_dir=stat.S_ISDIR(os.fstat(fd).st_mode))
                    libc.move_mount(fd, target)
                finally:
                    os.close(fd)
                return
            ensure_target(target, is_dir=True)
            data = "mode=1777" + (f",size={mount.size_bytes}" if mount.size_bytes else "")
            flags = libc.MS_NOSUID | libc.MS_NODEV | (libc.MS_RDONLY if mount.read_only else 0)
            libc.mount("tmpfs", target, "tmpfs", flags, data)

        return attach


def _make_dev_nodes() -> None:
    """mknod(2) the standard nodes in the container's /dev tmpfs, as runc and
    crun do outside a user namespace: one syscall each, where a bind from the
    host's node costs an open_tree(2) before pivot_root, a file to mount on
    and a move_mount(2) (0.4-0.5 ms for the six, ``python -m bench.steps``).
    The child is still host root with every capability (CAP_MKNOD), and the
    devices cgroup allows mknod of any node and opening only these."""
    # mknod(2) applies the umask; the nodes are 0666 as the host's are.
    old = os.umask(0)
    try:
        for name, (major, minor) in DEVICES.items():
            os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
    finally:
        os.umask(old)


def _make_workdir(workdir: str) -> None:
    if not os.path.lexists(workdir):  # a file there fails in "chdir"
        os.makedirs(workdir, mode=0o755, exist_ok=True)


def _root_read_only() -> None:
    libc.mount_setattr("/", libc.MOUNT_ATTR_RDONLY)


def _call(function: Callable[[str], None], path: str) -> Callable[[], None]:
    return lambda: function(path)


def _become_userns_root() -> None:
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _ensure_dir(path: str, mode: int) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=mode, exist_ok=True)


def ensure_target(target: str, is_dir: bool) -> None:
    """Create a missing mount point: a directory, or an empty file for a file bind."""
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
