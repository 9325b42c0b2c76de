"""User namespaces: the id maps the launcher writes for ``"userns": true``.

user_namespaces(7): a child cloned with CLONE_NEWUSER starts with no
mapping (its ids show as the overflow id 65534) and waits on the sync pipe;
the launcher, root in the parent namespace, writes ``/proc/PID/uid_map``
and ``gid_map`` before the go byte.  Container ids 0..size-1 become host
ids host_id..host_id+size-1, so a process that escapes the container is an
unprivileged nobody on the host.

``/proc/PID/setgroups`` stays "allow": the writer holds CAP_SETGID in the
parent namespace, so the kernel does not require "deny" before gid_map
(user_namespaces(7), "The /proc/[pid]/setgroups file"), and the child can
still drop its supplementary groups with setgroups(2).
"""

from __future__ import annotations

import os

DEFAULT_HOST_ID = 100000


def parse_range(text: str) -> tuple[int, int]:
    """``"100000-165535"`` -> ``(100000, 65536)``; at least 65536 ids."""
    start_text, sep, end_text = text.partition("-")
    if not sep or not start_text.isdigit() or not end_text.isdigit():
        raise ValueError(f"a userns range is FIRST-LAST in host ids, got {text!r}")
    start, end = int(start_text), int(end_text)
    if start < 1 or end < start or end > 2**32 - 2:
        raise ValueError(f"invalid userns range {text!r}")
    return start, end - start + 1


def write_maps(pid: int, host_id: int, size: int) -> None:
    """Map container 0..size-1 to host host_id.. for uids and gids."""
    line = f"0 {host_id} {size}\n".encode()
    for name in ("uid_map", "gid_map"):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, line)  # one write(2): the kernel takes the map whole
        finally:
            os.close(fd)
