"""runtime/network/firewall.py without root: the scripts it renders and what
it hands to nft (a fake that records them)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.network import firewall as fw

A = IPv4Address
BR0 = fw.Network("mdbr0", IPv4Network("172.30.0.0/16"), A("172.30.0.1"))
BR1 = fw.Network("mdbr1", IPv4Network("172.31.0.0/24"), A("172.31.0.1"), internal=True)
WEB = fw.PublishedPort(fw.Protocol.TCP, fw.ANY, 8080, A("172.30.0.2"), 80)
DNS = fw.PublishedPort(fw.Protocol.UDP, A("127.0.0.1"), 5353, A("172.30.0.2"), 53)


class FakeNft:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def run(self, what: str, script: str) -> None:
        self.runs.append((what, script))


def chain(script: str, name: str) -> list[str]:
    """The rules of one chain, as rendered."""
    lines = script.splitlines()
    start = lines.index(f"  chain {name} {{")
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start + 1 : end]]


def test_the_table_is_replaced_in_one_script_and_nothing_else_is_touched() -> None:
    script = fw.render(fw.FirewallState(networks=(BR0,)))
    assert script.splitlines()[:3] == [
        "table inet mydocker",
        "delete table inet mydocker",
        "table inet mydocker {",
    ]
    assert "flush" not in script and "iptables" not in script
    assert {line.split()[1] for line in script.splitlines() if line.startswith("table")} == {"inet"}


def test_masquerade_isolation_and_internal_networks() -> None:
    script = fw.render(fw.FirewallState(networks=(BR0, BR1)))
    assert 'elements = { "mdbr0", "mdbr1" }' in script
    assert chain(script, "postrouting") == [
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip saddr 127.0.0.0/8 oifname @bridges masquerade",
        'ip saddr 172.30.0.0/16 oifname != "mdbr0" masquerade',
        'ct status dnat ip saddr 172.30.0.0/16 oifname "mdbr0" masquerade',
    ]  # nothing masquerades the internal network
    assert chain(script, "forward")[1:] == [
        'iifname "mdbr0" oifname != "mdbr0" oifname @bridges drop',
        'iifname "mdbr1" oifname != "mdbr1" drop',
        'oifname "mdbr1" iifname != "mdbr1" drop',
    ]
    assert chain(script, "input")[1:] == ['iifname "mdbr1" ip daddr != 172.31.0.1 drop']


def test_published_ports_are_map_elements_dnat_in_prerouting_and_output() -> None:
    script = fw.render(fw.FirewallState(networks=(BR0,), ports=(WEB, DNS)))
    assert "elements = { tcp . 8080 : 172.30.0.2 . 80 }" in script
    assert "elements = { 127.0.0.1 . udp . 5353 : 172.30.0.2 . 53 }" in script
    for hook in ("prerouting", "output"):
        assert chain(script, hook)[1] == "meta nfproto ipv4 fib daddr type local goto publish"
    assert chain(script, "publish") == [
        "dnat ip to ip daddr . meta l4proto . th dport map @publish_at",
        "dnat ip to meta l4proto . th dport map @publish_any",
    ]


def test_an_empty_state_renders_empty_sets_and_chains() -> None:
    script = fw.render(fw.FirewallState())
    assert "elements" not in script
    assert chain(script, "forward") == ["type filter hook forward priority filter; policy accept;"]


def test_port_updates_are_element_commands_removals_first() -> None:
    assert fw.render_ports(add=[WEB], remove=[DNS]) == (
        "delete element inet mydocker publish_at { 127.0.0.1 . udp . 5353 }\n"
        "add element inet mydocker publish_any { tcp . 8080 : 172.30.0.2 . 80 }\n"
    )
    assert fw.render_ports() == ""


def test_the_firewall_hands_each_step_to_nft(tmp_path: Path) -> None:
    (tmp_path / "net/ipv4/conf/mdbr0").mkdir(parents=True)
    nft = FakeNft()
    firewall = fw.Firewall(nft, proc_sys=tmp_path)
    state = fw.FirewallState(networks=(BR0, BR1), ports=(WEB,))
    firewall.apply(state)
    firewall.publish([DNS])
    firewall.publish([])  # nothing to do: no nft call
    firewall.unpublish([DNS])
    firewall.teardown()
    assert [what for what, _ in nft.runs] == [
        "apply the firewall",
        "publish ports",
        "unpublish ports",
        "remove the firewall",
    ]
    assert nft.runs[0][1] == fw.render(state)
    assert nft.runs[-1][1] == "table inet mydocker\ndelete table inet mydocker\n"
    # route_localnet on the bridge that exists, and never on `all`.
    assert (tmp_path / "net/ipv4/conf/mdbr0/route_localnet").read_text() == "1\n"
    assert not (tmp_path / "net/ipv4/conf/all").exists()
    assert not (tmp_path / "net/ipv4/conf/mdbr1").exists()


@pytest.mark.parametrize("name", ["", "a" * 16, 'br"0', "br 0", "br;0"])
def test_a_bridge_name_nft_could_misread_is_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="bridge"):
        fw.Network(name, IPv4Network("10.0.0.0/24"), A("10.0.0.1"))


def test_ports_and_gateway_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="host_port: 0 is not a port"):
        fw.PublishedPort(fw.Protocol.TCP, fw.ANY, 0, A("10.0.0.2"), 80)
    with pytest.raises(InvalidArgument, match="gateway: 10.1.0.1 is not in 10.0.0.0/24"):
        fw.Network("br", IPv4Network("10.0.0.0/24"), A("10.1.0.1"))
