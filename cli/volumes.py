"""``mydocker volume create|ls|inspect|rm|prune`` and the ``run`` options
that use volumes, restart policies and init: ``-v``, ``--volumes-from``,
``--restart``, ``--init`` (the native API's ``mounts``, ``volumes_from``,
``restart_policy``, ``init``).

    add_run_options   the run options, on the run parser
    run_fields        those options as fields of the create body
    add_parser        the ``volume`` command and its subcommands
    cmd_volume        what it does (one request per subcommand)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli import output
from cli.client import Api, ServiceError, UsageError

VOLUME_COLUMNS = ("NAME", "ANONYMOUS", "CREATED", "MOUNTPOINT")


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="[SRC:]DST[:ro]",
        help="a volume NAME:DST, a host path /SRC:DST, or a new anonymous volume at DST",
    )
    run.add_argument("--volumes-from", action="append", default=[], metavar="REF[:ro|rw]")
    run.add_argument(
        "--restart", metavar="POLICY", help="no, on-failure[:N], always, unless-stopped"
    )
    run.add_argument("--init", action="store_true", help="run the command under tini as PID 1")


def mount(spec: str) -> dict[str, Any]:
    """``-v`` as docker reads it: ``DST``, ``SRC:DST`` or ``SRC:DST:ro|rw``."""
    parts = spec.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    if len(parts) > 3 or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise UsageError(f"invalid volume {spec!r}: [SRC:]DST[:ro|rw]")
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith("/") else "volume"
    return {"type": kind, "source": source, "target": target, "read_only": parts[2:] == ["ro"]}


def restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if count and (name != "on-failure" or not count.isdigit()):
        raise UsageError(f"invalid restart policy {text!r}: a count only after on-failure:")
    return {"name": name, "maximum_retry_count": int(count or 0)}


def run_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The create body's fields for these options (only those given)."""
    fields: dict[str, Any] = {}
    if args.volume:
        fields["mounts"] = [mount(v) for v in args.volume]
    if args.volumes_from:
        fields["volumes_from"] = list(args.volumes_from)
    if args.restart:
        fields["restart_policy"] = restart_policy(args.restart)
    if args.init:
        fields["init"] = True
    return fields


def add_parser(sub: Any) -> argparse.ArgumentParser:
    volume: argparse.ArgumentParser = sub.add_parser("volume", help="manage volumes")
    verbs = volume.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="make a volume (anonymous without a name)")
    create.add_argument("name", nargs="?")
    create.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    ls = verbs.add_parser("ls", help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="names only")
    ls.add_argument("-f", "--filter", action="append", default=[], metavar="label=KEY[=VALUE]")
    verbs.add_parser("inspect", help="one volume as JSON").add_argument("name")
    rm = verbs.add_parser("rm", help="remove volumes (refused while a container uses one)")
    rm.add_argument("names", nargs="+")
    prune = verbs.add_parser("prune", help="remove unused anonymous volumes")
    prune.add_argument("-a", "--all", action="store_true", help="unused named ones too")
    for verb in verbs.choices.values():
        verb.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return volume


def cmd_volume(api: Api, args: argparse.Namespace) -> int:
    if args.verb == "create":
        body: dict[str, Any] = {"labels": dict(i.partition("=")[::2] for i in args.label)}
        if args.name:
            body["name"] = args.name
        made = api.json("POST", "/volumes", json=body)
        if args.json:
            output.print_json(made)
        else:
            print(made["name"])
    elif args.verb == "ls":
        wanted = [f.removeprefix("label=") for f in args.filter]
        volumes = api.json("GET", "/volumes", params={"label": wanted})
        if args.json:
            output.print_json(volumes)
        elif args.quiet:
            for volume in volumes:
                print(volume["name"])
        else:
            rows: list[tuple[str, ...]] = [
                (v["name"], "yes" if v["anonymous"] else "", v["created_at"], v["mountpoint"])
                for v in volumes
            ]
            output.print_table(rows, VOLUME_COLUMNS)
    elif args.verb == "inspect":
        output.print_json(api.json("GET", f"/volumes/{args.name}"))
    elif args.verb == "rm":
        return _remove(api, args.names)
    else:
        pruned = api.json("POST", "/volumes/prune", params={"all": str(args.all).lower()})
        if args.json:
            output.print_json(pruned)
        else:
            for name in pruned["removed"]:
                print(name)
    return 0


def _remove(api: Api, names: list[str]) -> int:
    failed = False
    for name in names:
        try:
            api.request("DELETE", f"/volumes/{name}")
            print(name)
        except ServiceError as err:
            sys.stderr.write(f"mydocker: {name}: {err}\n")
            failed = True
    return 1 if failed else 0
