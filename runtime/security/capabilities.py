"""Linux capabilities by name, Docker's default set, and dropping the rest.

capabilities(7) lists the numbers (<linux/capability.h>).  A container keeps
Docker's default 14 unless the spec says otherwise: ``cap_add`` and
``cap_drop`` take names with or without the ``CAP_`` prefix, in any case,
and ``ALL`` as Docker does (``cap_add: [ALL]`` is every capability,
``cap_drop: [ALL]`` starts from none).

In the child, ``drop_bounding`` runs while it is still fully privileged (it
needs CAP_SETPCAP), before the switch of user; ``apply`` runs after it and
sets permitted and effective to the kept set (empty for a non-root user, as
Docker does since 20.10), and inheritable and ambient to empty (Docker
empties inheritable since CVE-2022-24769, so that a file with inheritable
capabilities cannot regain them at execve).
"""

from __future__ import annotations

from collections.abc import Iterable

from runtime import libc
from runtime.spec import DEFAULT_CAPABILITIES

#: capabilities(7), <linux/capability.h>, by number.
CAPABILITIES: dict[str, int] = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11,
    "NET_ADMIN": 12,
    "NET_RAW": 13,
    "IPC_LOCK": 14,
    "IPC_OWNER": 15,
    "SYS_MODULE": 16,
    "SYS_RAWIO": 17,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_PACCT": 20,
    "SYS_ADMIN": 21,
    "SYS_BOOT": 22,
    "SYS_NICE": 23,
    "SYS_RESOURCE": 24,
    "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26,
    "MKNOD": 27,
    "LEASE": 28,
    "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30,
    "SETFCAP": 31,
    "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33,
    "SYSLOG": 34,
    "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37,
    "PERFMON": 38,
    "BPF": 39,
    "CHECKPOINT_RESTORE": 40,
}

#: Docker's default set (moby's oci/caps/defaults.go).
DEFAULT = DEFAULT_CAPABILITIES


def normalize(name: str) -> str:
    """``"cap_net_admin"`` -> ``"NET_ADMIN"``; ``ValueError`` for an unknown name."""
    upper = name.strip().upper()
    if upper.startswith("CAP_"):
        upper = upper[4:]
    if upper != "ALL" and upper not in CAPABILITIES:
        raise ValueError(f"unknown capability {name!r}")
    return upper


def resolve(cap_add: Iterable[str] = (), cap_drop: Iterable[str] = ()) -> tuple[str, ...]:
    """The capability set a container keeps, sorted by number.

    Docker's rules (moby ``caps.TweakCapabilities``): ``ALL`` in ``cap_add``
    means every capability, minus ``cap_drop``; ``ALL`` in ``cap_drop``
    means none, plus ``cap_add``; otherwise the default set, plus the
    added, minus the dropped.
    """
    adds = {normalize(n) for n in cap_add}
    drops = {normalize(n) for n in cap_drop}
    if "ALL" in adds:
        kept = set(CAPABILITIES) - (drops - {"ALL"})
        if "ALL" in drops:
            kept = set()
    elif "ALL" in drops:
        kept = adds
    else:
        kept = (set(DEFAULT) | adds) - drops
    return tuple(sorted(kept, key=CAPABILITIES.__getitem__))


def mask(names: Iterable[str]) -> int:
    """The 64-bit mask of the named capabilities."""
    result = 0
    for name in names:
        result |= 1 << CAPABILITIES[name]
    return result


def last_cap() -> int:
    """The highest capability this kernel knows (proc(5): cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def drop_bounding(keep: int, last: int) -> None:
    """PR_CAPBSET_DROP every capability up to ``last`` that ``keep`` lacks.

    prctl(2): the bounding set limits what execve can ever grant again, so
    this is what makes the drop permanent for the container's processes.
    Runs before the PID namespace's /proc is gone or the user changes:
    it needs CAP_SETPCAP in the effective set.
    """
    for number in range(last + 1):
        if not keep & (1 << number):
            libc.prctl(libc.PR_CAPBSET_DROP, number)


def clear_ambient() -> None:
    """PR_CAP_AMBIENT_CLEAR_ALL (prctl(2)): nothing survives execve unasked."""
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)


def apply(keep: int, uid: int, held: int | None = None) -> None:
    """Set permitted, effective and inheritable (capset(2)).

    capabilities(7): when a process with uid 0 calls execve, its new
    permitted set is its bounding set, so root keeps ``keep``; for a
    non-root user the kernel already cleared permitted and effective at
    setuid, and we leave them empty (Docker gives a non-root user no
    effective capabilities either).  ``held``: the caller's permitted set
    when known ahead (runtime/child.py), which spares a capget(2).
    """
    kept = 0
    if uid == 0:
        if held is None:
            _, held, _ = libc.capget()
        # capset(2) cannot raise permitted beyond what we hold: the launcher's
        # own bounding set may already lack some (cap_add ALL on such a host).
        kept = keep & held
    libc.capset(effective=kept, permitted=kept, inheritable=0)
