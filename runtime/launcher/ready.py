"""What the launcher's selector holds for each fd: its source and its handler.

Every fd registered with the loop's ``selectors`` selector carries a
``Ready``: the ``Source`` says what the fd is (the loop orders a turn by it
and caps the exits it handles, server.py), ``handle`` is called with the
selector's event mask.  No string tags: the room that registers an fd also
says who handles it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class Source(enum.Enum):
    LISTENER = "listener"  # a client connects (transport.py)
    CLIENT = "client"  # a request arrives, or queued output can go (transport.py)
    PIDFD = "pidfd"  # a child has exited (reaper.py)
    ERROR_PIPE = "error_pipe"  # execve happened, or a set-up step failed (spawn.py)
    CONSOLE = "console"  # the child sent its pty's master (ptyio.py)
    PTY = "pty"  # the pty master has output, or takes input (ptyio.py)
    STDIN = "stdin"  # the stdin pipe takes input (ptyio.py)
    INOTIFY = "inotify"  # a log file grew (watch.py)
    POOL = "pool"  # a pooled child is ready, or died unclaimed (pool.py)


@dataclass(frozen=True)
class Ready:
    source: Source
    handle: Callable[[int], None]
