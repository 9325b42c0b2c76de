"""mydocker's runtime: containers without HTTP.

runtime.Runtime        the facade the API calls; the parts it composes:
  layout, planning, admission, launches, exits, reconcile, signalling,
  output, interactive  (runtime/runtime.py maps them, with their locks and threads)
spec.ContainerSpec     what a container should be
records                the SQLite store of what containers were and are
selection.Selector     which containers a bulk operation (kill_many) means
launcher/              the single-threaded process that clones them
nsexec                 exec: joining a running container
terminal               ptys and stdin pipes for interactive containers
child                  what runs in a container before execve
libc                   the one ctypes module
launchtrace            a launch's timeline from the launcher, handed to ``on_launch``
namespaces, exitstatus, signals, logs, procfs: one concept each
"""

from runtime.errors import (
    AmbiguousReference,
    Conflict,
    InvalidArgument,
    InvalidState,
    LimitReached,
    NameInUse,
    NotFound,
    NotModified,
    RuntimeFailure,
    StorageFull,
    Unavailable,
)
from runtime.interactive import AttachTarget
from runtime.launchtrace import LaunchTimeline, LaunchTrace
from runtime.records import ContainerRecord, ExecRecord
from runtime.runtime import Runtime
from runtime.selection import Selector
from runtime.signalling import KillResult

__all__ = [
    "AmbiguousReference",
    "AttachTarget",
    "Conflict",
    "ContainerRecord",
    "ExecRecord",
    "InvalidArgument",
    "InvalidState",
    "KillResult",
    "LaunchTimeline",
    "LaunchTrace",
    "LimitReached",
    "NameInUse",
    "NotFound",
    "NotModified",
    "Runtime",
    "RuntimeFailure",
    "Selector",
    "StorageFull",
    "Unavailable",
]
