"""A container's own /etc/resolv.conf, /etc/hosts and /etc/hostname.

    resolv_conf   the embedded DNS server (the network's gateway) as the only nameserver
    hosts         localhost, the IPv6 names Docker writes, and the container's own name
    hostname      the name and a newline
    host_search   the host's ``search`` domains, which a container keeps (as Docker's)
    rewrite       a file's new text, in place (its inode is bind-mounted), if changed

The integration writes these three files in the container's directory and
bind-mounts each over the one in /etc (the host image shows the host's /etc,
which must not be edited).  Names are checked with dns.check_name before they
get here: a newline in a name would add a line to /etc/hosts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

from runtime.network.dns import check_name


def resolv_conf(nameserver: IPv4Address | None, search: Sequence[str] = ()) -> str:
    """resolv.conf(5).  ``ndots:0`` (Docker's too): a name with no dot is
    asked as it is first, so a container name is one query, not one per
    search domain.  Without a nameserver (no network), glibc falls back to
    127.0.0.1, which answers nothing: a quick failure."""
    lines = ["# written by mydocker: the network's embedded DNS (docs/networking.md)"]
    if nameserver is not None:
        lines.append(f"nameserver {nameserver}")
    if search:
        lines.append("search " + " ".join(search))
    lines.append("options ndots:0")
    return "\n".join(lines) + "\n"


def hosts(name: str, address: IPv4Address | None, aliases: Sequence[str] = ()) -> str:
    """hosts(5): the loopback names, and ``address name aliases…`` when the
    container has an address."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    if address is not None:
        names = [check_name(name), *(check_name(a) for a in aliases if a != name)]
        lines.append(f"{address}\t" + " ".join(dict.fromkeys(names)))
    return "\n".join(lines) + "\n"


def host_line(address: IPv4Address, names: Sequence[str]) -> str:
    """One more hosts(5) line: ``address name…`` (each name checked)."""
    return f"{address}\t" + " ".join(dict.fromkeys(check_name(n) for n in names)) + "\n"


def rewrite(path: str, text: str) -> None:
    """Write ``text`` over the file at ``path`` in place: a container sees
    its /etc files through binds of these very inodes, so a replacing rename
    would not reach it.  Unchanged text is not written.  No O_TRUNC: on ext4
    a file truncated to zero and written again is flushed to disk at close
    (ext4(5), ``auto_da_alloc``), 0.3 ms a file here; writing over it and
    then cutting it to the new length is not."""
    data = text.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if os.pread(fd, len(data) + 1, 0) == data:
            return
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def hostname(name: str) -> str:
    return check_name(name) + "\n"


def host_search(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The last ``search`` (or ``domain``) line wins, as in resolv.conf(5)."""
    found: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in ("search", "domain"):
            found = words[1:]
    return found
