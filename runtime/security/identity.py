"""Who the command runs as: ``"uid[:gid]"`` and the switch to it.

Only numbers: the service does not read the image's /etc/passwd.  Without a
gid the group is the uid's number, not 0 as Docker does when it finds no
passwd entry, so a numeric user never lands in group root by accident.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

#: setresuid(2) takes a uid_t; (uid_t)-1 means "unchanged", so it is not a uid.
MAX_ID = 2**32 - 2


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    #: Supplementary groups (Docker's ``GroupAdd``): ids, or names that
    #: ``switch`` looks up in the container's /etc/group.
    groups: tuple[str, ...] = ()


def parse(text: str) -> User:
    """``"1000"`` -> ``User(1000, 1000)``; ``"1000:50"`` -> ``User(1000, 50)``."""
    uid_text, sep, gid_text = text.partition(":")
    if not uid_text.isdigit() or (sep and not gid_text.isdigit()):
        raise ValueError(f"must be uid or uid:gid in numbers, got {text!r}")
    uid = int(uid_text)
    gid = int(gid_text) if sep else uid
    if uid > MAX_ID or gid > MAX_ID:
        raise ValueError(f"ids must be at most {MAX_ID}")
    return User(uid, gid)


def switch(user: User) -> None:
    """setgroups, setresgid, setresuid, in that order (credentials(7)).

    Groups first: once the uid is not 0, CAP_SETGID is gone.  Supplementary
    groups are the user's own (``groups``), so none of the launcher's (root's)
    survive.
    """
    os.setgroups(group_ids(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


def group_ids(groups: tuple[str, ...], path: str = "/etc/group") -> list[int]:
    """Numbers as they are, names from group(5) (the container's, once the
    root is pivoted); an unknown name is ENOENT, which the step reports."""
    names = [g for g in groups if not g.isdigit()]
    table: dict[str, int] = {}
    if names:
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[2].isdigit():
                    table.setdefault(fields[0], int(fields[2]))
    ids = []
    for group in groups:
        if group.isdigit():
            ids.append(int(group))
        elif group in table:
            ids.append(table[group])
        else:
            raise FileNotFoundError(errno.ENOENT, f"no group {group!r} in {path}")
    return ids
