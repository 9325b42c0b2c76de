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

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from runtime.interactive import AttachTarget
    from runtime.launchtrace import LaunchTimeline, LaunchTrace
    from runtime.records import ContainerRecord, ExecRecord
    from runtime.runtime import Runtime
    from runtime.selection import Selector
    from runtime.signalling import KillResult

#: Where the facade's names live, imported on first use (PEP 562): the
#: launcher imports a few modules of this package and, through this file,
#: used to load the facade and all behind it (SQLite, the image puller,
#: httpx and its command line's rich and pygments): 39 instead of 26 MiB of
#: RSS whose page tables every clone(2) copies (docs/performance-log.md, "The
#: host-image launch").
_HOMES = {
    "AttachTarget": "runtime.interactive",
    "LaunchTimeline": "runtime.launchtrace",
    "LaunchTrace": "runtime.launchtrace",
    "ContainerRecord": "runtime.records",
    "ExecRecord": "runtime.records",
    "Runtime": "runtime.runtime",
    "Selector": "runtime.selection",
    "KillResult": "runtime.signalling",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


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
