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


def cgroups(pid: int | str) -> dict[str, str]:
    """``{hierarchy: path}`` from /proc/PID/cgroup (cgroups(7)).

    The key is the controller list of a v1 hierarchy (``"memory"``,
    ``"name=systemd"``) or ``""`` for the v2 unified hierarchy."""
    result: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                result[controllers] = path
    except OSError:
        pass
    return result


def cgroup_mounts() -> dict[str, str]:
    """``{hierarchy: mount point}`` of the cgroup filesystems mounted at their
    root, from /proc/self/mountinfo (proc(5): field 4 is the mount's root,
    field 5 its mount point, the super options follow the fs type)."""
    result: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return result
    for line in lines:
        fields = line.split()
        dash = fields.index("-")
        fstype, options = fields[dash + 1], fields[dash + 3]
        root, mount_point = fields[3], fields[4]
        if root != "/":
            continue
        if fstype == "cgroup2":
            result.setdefault("", mount_point)
        elif fstype == "cgroup":
            wanted = [o for o in options.split(",") if o not in ("rw", "ro")]
            result.setdefault(",".join(wanted), mount_point)
    return result


def cgroup_procs_to_join(pid: int) -> list[str]:
    """The ``cgroup.procs`` files that move a process of ours into ``pid``'s
    cgroups: one per hierarchy where ``pid`` sits elsewhere than we do."""
    ours, theirs, mounts = cgroups("self"), cgroups(pid), cgroup_mounts()
    files = []
    for hierarchy, path in theirs.items():
        mount_point = mounts.get(hierarchy)
        if mount_point is None or ours.get(hierarchy) == path:
            continue
        files.append(f"{mount_point.rstrip('/')}{path.rstrip('/')}/cgroup.procs")
    return files


def process_state(pid: int) -> str | None:
    """Field 3 of /proc/PID/stat: R, S, D, Z (zombie), ...; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()[0].decode()


def parent_pid(pid: int) -> int | None:
    """Field 4 of /proc/PID/stat; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2 :].split()[1])


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` (proc(5)), in bytes: pages shared copy-on-write
    with another process count in full, so a sum over-counts."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError("no VmRSS")
