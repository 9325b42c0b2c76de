"""runtime/network/etcfiles.py: the container's resolv.conf, hosts and hostname."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.network import etcfiles


def test_resolv_conf_names_the_gateway_only() -> None:
    text = etcfiles.resolv_conf(IPv4Address("172.18.0.1"), ["corp.example", "lan"])
    assert text.splitlines()[1:] == [
        "nameserver 172.18.0.1",
        "search corp.example lan",
        "options ndots:0",
    ]
    assert "nameserver" not in etcfiles.resolv_conf(None)


def test_hosts_lists_the_container_once_with_its_aliases() -> None:
    text = etcfiles.hosts("web", IPv4Address("172.18.0.2"), ["www", "web", "Api"])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-1] == "172.18.0.2\tweb www api"
    assert etcfiles.hosts("web", None).splitlines()[-1] == "ff02::2\tip6-allrouters"


def test_a_name_that_would_add_a_line_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        etcfiles.hosts("web\n6.6.6.6 bank", IPv4Address("172.18.0.2"))
    with pytest.raises(InvalidArgument):
        etcfiles.hostname("a b")
    assert etcfiles.hostname("web") == "web\n"


def test_the_hosts_search_domains_last_line_wins(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("domain one\nnameserver 10.0.0.1\nsearch two three\n")
    assert etcfiles.host_search(conf) == ["two", "three"]
    assert etcfiles.host_search(tmp_path / "none") == []


def test_rewrite_keeps_the_inode_cuts_to_length_and_skips_unchanged_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hosts"
    etcfiles.rewrite(str(path), "127.0.0.1\tlocalhost\n10.0.0.2\tweb db\n")
    inode = path.stat().st_ino
    etcfiles.rewrite(str(path), "127.0.0.1\tlocalhost\n")  # shorter: no tail left over
    assert path.read_text() == "127.0.0.1\tlocalhost\n"
    assert path.stat().st_ino == inode  # a bind of this inode sees the change
    os.utime(path, ns=(10**18, 10**18))  # a write would move it to now
    etcfiles.rewrite(str(path), "127.0.0.1\tlocalhost\n")
    assert path.stat().st_mtime_ns == 10**18  # unchanged: not written


def test_the_hosts_resolv_conf_is_read_again_only_once_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch a.example\n")
    resolv = etcfiles.HostResolv(conf)
    assert resolv.get() == (["a.example"], ["192.0.2.1"])  # loopback: unreachable inside
    reads: list[Path] = []
    real = Path.read_text

    def counted(path: Path, *args: object, **kwargs: object) -> str:
        reads.append(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counted)
    assert resolv.get() == (["a.example"], ["192.0.2.1"])
    assert reads == []  # unchanged: not read again
    conf.write_text("nameserver 198.51.100.7\nsearch b.example c.example\n")
    assert resolv.get() == (["b.example", "c.example"], ["198.51.100.7"])
    assert reads == [conf]
    conf.unlink()
    assert resolv.get() == ([], [])
