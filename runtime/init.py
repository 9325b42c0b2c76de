"""``init: true``: a small init as the container's PID 1, the command under it.

    TINI      the host's static tini (Debian's ``tini`` package), bound read-only
    TARGET    where the container sees it; the child binds it after ``/dev``
    argv      the argv the child execs: ``TARGET -- command...`` with ``init``
    forwarding  whether tini forwards signals yet (stop asks before a SIGTERM)

pid_namespaces(7): PID 1 gets only the signals it handles, and orphans are
re-parented to it; a command that is not written to be an init ignores
SIGTERM and leaves zombies.  tini forwards the signals it receives to its
child and reaps every process, then exits with its child's status (Docker's
``--init`` runs the same program as ``docker-init``).  The static build
runs in any image, whatever its libc; ``/dev`` is the container's own tmpfs,
so the target exists in every image, the host one included.
"""

from __future__ import annotations

from runtime.spec import ContainerSpec

TINI = "/usr/bin/tini-static"
TARGET = "/dev/init"


def argv(spec: ContainerSpec) -> list[str]:
    """What the child execs: the command, under tini with ``init``."""
    if not spec.init:
        return list(spec.command)
    # "--": the command's own options are not tini's.
    return [TARGET, "--", *spec.command]


def forwarding(pid: int) -> bool:
    """Whether tini (PID 1, host ``pid``) forwards signals: once it has
    started the command.  It takes them with sigtimedwait(2), so it shows no
    handler (``SigCgt``) that runtime/signals.py's ``catches`` could see; and
    before it has set up, a SIGTERM to a namespace's init without a handler
    is dropped (pid_namespaces(7)), so a stop must not wait for it then.
    proc(5): ``/proc/PID/task/PID/children`` lists its children."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return bool(f.read().split())
    except OSError:
        return False
