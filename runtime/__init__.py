"""mydocker's runtime: containers without HTTP.

service.Runtime        the facade the API calls
spec.ContainerSpec     what a container should be
records                the SQLite store of what containers were and are
launcher/              the single-threaded process that clones them
child                  what runs in a container before execve
libc                   the one ctypes module
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
    RuntimeFailure,
    Unavailable,
)
from runtime.records import ContainerRecord
from runtime.service import Runtime

__all__ = [
    "AmbiguousReference",
    "Conflict",
    "ContainerRecord",
    "InvalidArgument",
    "InvalidState",
    "LimitReached",
    "NameInUse",
    "NotFound",
    "Runtime",
    "RuntimeFailure",
    "Unavailable",
]
