"""The CLI's networking: ``run --network -p``, ``network
create/ls/inspect/rm/connect/disconnect``, ``port``.

add_run_options / run_fields   run's --network, -p/--publish, --network-alias
parse_publish                  -p [IP:][HOST:]CONTAINER[/udp] -> a native port
add_parsers                    the network and port commands
cmd_network, cmd_port          what they do
"""

from __future__ import annotations

import argparse
from typing import Any

from cli import output
from cli.client import Api


def parse_publish(text: str) -> dict[str, Any]:
    """``-p [IP:][HOST:]CONTAINER[/udp]``, as docker's (an empty HOST: any free port)."""
    spec, _, protocol = text.partition("/")
    parts = spec.split(":")
    try:
        if len(parts) == 1:
            ip, host, container = "", "", parts[0]
        elif len(parts) == 2:
            ip, (host, container) = "", parts
        elif len(parts) == 3:
            ip, host, container = parts
        else:
            raise ValueError
        port: dict[str, Any] = {"container_port": int(container)}
        if host:
            port["host_port"] = int(host)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected [IP:][HOST:]CONTAINER[/tcp|/udp]"
        ) from None
    if ip:
        port["host_ip"] = ip
    if protocol:
        port["protocol"] = protocol
    return port


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--network", help="none (default: only lo), bridge, host, or a network's name")
    run.add_argument(
        "-p",
        "--publish",
        type=parse_publish,
        action="append",
        default=[],
        metavar="[IP:][HOST:]CONTAINER[/udp]",
        help="publish a port (IP default 127.0.0.1, HOST default a free one)",
    )
    run.add_argument("--network-alias", action="append", default=[], help="a name on the network")


def run_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The create body's network fields from run's options."""
    body: dict[str, Any] = {}
    if args.network:
        body["network"] = args.network
    elif args.publish:
        body["network"] = "bridge"  # -p alone: Docker's default network
    if args.publish:
        body["ports"] = args.publish
    if args.network_alias:
        body["network_aliases"] = args.network_alias
    return body


def add_parsers(sub: Any) -> None:
    net = sub.add_parser("network", help="manage networks")
    verbs = net.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="create a bridge network")
    create.add_argument("--subnet", help="IPv4 CIDR (default: a free one)")
    create.add_argument("--gateway")
    create.add_argument("--internal", action="store_true", help="no traffic in or out")
    create.add_argument("--ip-range", help="hand addresses out of this part of the subnet only")
    create.add_argument(
        "--aux-address",
        action="append",
        default=[],
        metavar="NAME=IP",
        help="an address never handed out",
    )
    create.add_argument("name")
    connect = verbs.add_parser("connect", help="connect a container to one more network")
    connect.add_argument("--alias", action="append", default=[], help="a name on the network")
    connect.add_argument("--ip", help="a static IPv4 address in the network's subnet")
    connect.add_argument("--mac-address")
    connect.add_argument("--link", action="append", default=[], metavar="CONTAINER[:ALIAS]")
    connect.add_argument("--link-local-ip", action="append", default=[])
    connect.add_argument("name")
    connect.add_argument("container")
    disconnect = verbs.add_parser("disconnect", help="disconnect a container from a network")
    disconnect.add_argument("-f", "--force", action="store_true")
    disconnect.add_argument("name")
    disconnect.add_argument("container")
    verbs.add_parser("ls", help="list networks")
    verbs.add_parser("inspect", help="print a network as JSON").add_argument("name")
    verbs.add_parser("rm", help="remove networks").add_argument("names", nargs="+")
    for verb in verbs.choices.values():
        verb.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    port = sub.add_parser("port", help="list a container's published ports")
    port.add_argument("ref")
    port.add_argument("port", nargs="?", help="CONTAINER[/udp]: only this one")


NETWORK_COLUMNS = ("NAME", "ID", "DRIVER", "SUBNET", "GATEWAY", "INTERNAL")


def cmd_network(api: Api, args: argparse.Namespace) -> int:
    if args.verb == "create":
        body: dict[str, Any] = {"name": args.name, "internal": args.internal}
        for key in ("subnet", "gateway", "ip_range"):
            if getattr(args, key):
                body[key] = getattr(args, key)
        if args.aux_address:
            body["aux_addresses"] = dict(a.partition("=")[::2] for a in args.aux_address)
        created = api.json("POST", "/networks", json=body)
        print(created["id"])
    elif args.verb == "connect":
        fields = {
            "network": args.name,
            "aliases": args.alias,
            "ipv4_address": args.ip,
            "mac_address": args.mac_address,
            "links": args.link,
            "link_local_ips": args.link_local_ip,
        }
        body = {k: v for k, v in fields.items() if v}
        api.json("POST", f"/containers/{args.container}/networks", json=body)
    elif args.verb == "disconnect":
        params = {"force": "true"} if args.force else None
        api.request("DELETE", f"/containers/{args.container}/networks/{args.name}", params=params)
    elif args.verb == "ls":
        networks = api.json("GET", "/networks")
        if getattr(args, "json", False):
            output.print_json(networks)
        else:
            rows: list[tuple[str, ...]] = [
                (
                    n["name"],
                    n["id"][:12],
                    n["driver"],
                    n["subnet"] or "",
                    n["gateway"] or "",
                    "yes" if n["internal"] else "",
                )
                for n in networks
            ]
            output.print_table(rows, NETWORK_COLUMNS)
    elif args.verb == "inspect":
        output.print_json(api.json("GET", f"/networks/{args.name}"))
    else:
        for name in args.names:
            api.request("DELETE", f"/networks/{name}")
            print(name)
    return 0


def cmd_port(api: Api, args: argparse.Namespace) -> int:
    """``CONTAINER/PROTO -> IP:PORT`` per line (``docker port``'s form)."""
    container = api.json("GET", f"/containers/{args.ref}")
    wanted = None
    if args.port:
        number, _, proto = args.port.partition("/")
        wanted = (int(number), proto or "tcp")
    for p in container["network"]["ports"]:
        key = (p["container_port"], p["protocol"])
        if wanted is not None and key != wanted:
            continue
        address = f"{p['host_ip']}:{p['host_port']}"
        print(address if wanted else f"{key[0]}/{key[1]} -> {address}")
    return 0
