"""Facts read from /proc."""

from __future__ import annotations


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (starttime, in clock ticks since boot).

    proc(5).  With the pid it identifies a process for good: a reused pid has
    a later start time.  The command name (field 2) may hold spaces and
    parentheses, so split after its last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19])  # field 22 is the 20th after "pid (comm)"
