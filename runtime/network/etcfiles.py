"""A container's own /etc/resolv.conf, /etc/hosts and /etc/hostname.

    resolv_conf   the embedded DNS server (the network's gateway) as the only nameserver
    hosts         localhost, the IPv6 names Docker writes, and the container's own name
    hostname      the name and a newline
    host_search   the host's ``search`` domains, which a container keeps (as Docker's)
    HostResolv    the host's resolv.conf as a container needs it (search domains,
                  the resolvers it can reach), read again only once it changed
    rewrite       a file's new text, in place (its inode is bind-mounted), if changed

The integration writes these three files in the container's directory and
bind-mounts each over the one in /etc (the host image shows the host's /etc,
which must not be edited).  Names are checked with dns.check_name before they
get here: a newline in a name would add a line to /etc/hosts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from runtime.network.dns import check_name, upstreams_in

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


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


def host_search(path: Path = HOST_RESOLV_CONF) -> list[str]:
    """The last ``search`` (or ``domain``) line wins, as in resolv.conf(5)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return search_in(text)


class HostResolv:
    """The host's resolv.conf as containers need it: ``search`` domains and
    the nameservers they can reach (not the host's loopback ones).  Read
    once, and again only when its inode, size or mtime changed (it rarely
    does): every bridge launch writes a container's resolv.conf from it."""

    def __init__(self, path: Path = HOST_RESOLV_CONF) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[object, tuple[list[str], list[str]]] | None = None

    def get(self) -> tuple[list[str], list[str]]:
        """(search domains, reachable nameservers), fresh copies."""
        try:
            st = os.stat(self.path)
            stamp: object = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        with self._lock:
            if self._seen is None or self._seen[0] != stamp:
                try:
                    text = self.path.read_text() if stamp is not None else ""
                except OSError:
                    text = ""
                servers = [h for h, _ in upstreams_in(text) if not ip_address(h).is_loopback]
                self._seen = (stamp, (search_in(text), servers))
            search, servers = self._seen[1]
        return list(search), list(servers)


def search_in(text: str) -> list[str]:
    """``host_search`` of a resolv.conf's text."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in ("search", "domain"):
            found = words[1:]
    return found
