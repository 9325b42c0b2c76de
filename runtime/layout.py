"""``Layout``: where a state dir keeps what.  Paths only: nothing is made here.

<state>/mydocker.db                          the records (runtime/records.py)
<state>/images/                              the image store (runtime/images/)
<state>/reserve                              room held back for exits (runtime/reserve.py)
<state>/launcher.{sock,lock,log}             the launcher's (runtime/launcher/client.py)
<state>/run/<id>.pid                         a container's pid file while it may run
                                             (``pidfile_path``, runtime/pids.py), on a
                                             tmpfs the launcher mounts (runtime/rundir.py)
<state>/etcfiles/<id>/{resolv.conf,hosts,hostname}   a bridge container's /etc
                                             files, on a tmpfs (runtime/network/etcdir.py)
<state>/layer/root/                          the host image's mount point, shared by every
                                             container without a user namespace (``host_layer``)
<state>/spares/<token>/{stdout,stderr}.log   container dirs made ahead (``spares``,
                                             runtime/sparedirs.py)
<state>/trash/<token>/                       a removed container's dir, emptied on a
                                             thread of its own (runtime/trash.py)
<state>/containers/<id>/                     one container (``container_dir``):
    {stdout,stderr}.log, .idx                  its output and time index (``log_path``)
    layer/                                     its root's mount point and an overlay's
                                               upper/work dirs (runtime/rootfs.py)
    execs/<exec id>/{stdout,stderr}.log        an exec's output (``exec_log_path``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime import rundir
from runtime.errors import RuntimeFailure
from runtime.records import ExecRecord

#: The two streams a container or an exec writes, in the order they are read.
LOG_STREAMS = ("stdout", "stderr")
#: overlayfs(5) splits its options at ',' and lowerdir at ':'.
_OVERLAY_SPECIALS = (",", ":", "\\")


def log_in(directory: str, stream: str) -> str:
    """The log file of ``stream`` in a container's or an exec's directory."""
    return os.path.join(directory, f"{stream}.log")


@dataclass(frozen=True)
class Layout:
    state_dir: str  # absolute, symlinks resolved (``Layout.of``)

    @classmethod
    def of(cls, state_dir: str) -> Layout:
        """The layout of ``state_dir``, which must be a path overlayfs can take."""
        real = os.path.realpath(state_dir)
        if any(c in real for c in _OVERLAY_SPECIALS):
            raise RuntimeFailure(
                f"the state dir {real!r} must not contain ',' ':' or '\\': "
                "overlayfs cannot take such paths"
            )
        return cls(real)

    @property
    def containers(self) -> str:
        return os.path.join(self.state_dir, "containers")

    @property
    def database(self) -> str:
        return os.path.join(self.state_dir, "mydocker.db")

    @property
    def images(self) -> str:
        return os.path.join(self.state_dir, "images")

    @property
    def etc_files(self) -> str:
        return os.path.join(self.state_dir, "etcfiles")

    @property
    def volumes(self) -> str:
        return os.path.join(self.state_dir, "volumes")

    @property
    def reserve(self) -> str:
        return os.path.join(self.state_dir, "reserve")

    @property
    def host_layer(self) -> str:
        return os.path.join(self.state_dir, "layer")

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.containers, container_id)

    def log_path(self, container_id: str, stream: str) -> str:
        return log_in(self.container_dir(container_id), stream)

    def exec_dir(self, container_id: str, exec_id: str) -> str:
        return os.path.join(self.container_dir(container_id), "execs", exec_id)

    def exec_log_path(self, record: ExecRecord, stream: str) -> str:
        return log_in(self.exec_dir(record.container_id, record.id), stream)

    @property
    def trash(self) -> str:
        return os.path.join(self.state_dir, "trash")

    @property
    def spares(self) -> str:
        return os.path.join(self.state_dir, "spares")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.state_dir, rundir.DIRNAME)

    def pidfile_path(self, container_id: str) -> str:
        return os.path.join(self.run_dir, container_id + rundir.PIDFILE_SUFFIX)

    def old_pidfile_path(self, container_id: str) -> str:
        """Where a launcher before ``run_dir`` wrote it (its containers may
        still run when a newer API buries them)."""
        return os.path.join(self.container_dir(container_id), "pid")
