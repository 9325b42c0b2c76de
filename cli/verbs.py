"""The lifecycle verbs of the CLI: restart, rename, pause, unpause, update, top
(and, through cli/files.py, cp, diff, export).

    add_parsers(sub)   their subcommands, on the main parser's subparsers
    COMMANDS           action -> function(api, args) -> exit status

Each is one request to the native API (app/routes/lifecycle.py); like
``stop``, each prints the container's id (``--json``: the container).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cli import files, output
from cli.client import Api

SIZE_SUFFIXES = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def memory_size(text: str) -> int:
    """``64m``, ``1g``, ``1048576``: bytes, as docker's ``--memory`` takes them."""
    value = text.strip().lower()
    factor = SIZE_SUFFIXES.get(value[-1:], 0)
    number = value[:-1] if factor else value
    try:
        return int(float(number) * (factor or 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: e.g. 64m, 1g") from None


def add_parsers(sub: Any) -> None:
    restart = sub.add_parser("restart", help="stop a container, then start it again")
    restart.add_argument("ref")
    restart.add_argument("-t", "--time", type=float, default=10, help="grace seconds (10)")
    rename = sub.add_parser("rename", help="give a container a new name")
    rename.add_argument("ref")
    rename.add_argument("name")
    for name, text in (("pause", "freeze a container"), ("unpause", "thaw a paused container")):
        sub.add_parser(name, help=text).add_argument("ref")
    update = sub.add_parser("update", help="change a container's memory, cpus or pids limit")
    update.add_argument("ref")
    update.add_argument("-m", "--memory", type=memory_size, help="memory limit, e.g. 64m")
    update.add_argument("--cpus", type=float, help="CPU time per second, e.g. 0.5")
    update.add_argument("--pids-limit", type=int, help="processes at once")
    top = sub.add_parser("top", help="the processes of a running container (ps)")
    top.add_argument("ref")
    top.add_argument("ps_args", nargs=argparse.REMAINDER, help="ps options (default -ef)")
    files.add_parsers(sub)


def _print(args: argparse.Namespace, container: dict[str, Any]) -> int:
    output.print_json(container) if args.json else print(container["id"])
    return 0


def cmd_restart(api: Api, args: argparse.Namespace) -> int:
    path = f"/containers/{args.ref}/restart"
    return _print(args, api.json("POST", path, params={"timeout": args.time}))


def cmd_rename(api: Api, args: argparse.Namespace) -> int:
    path = f"/containers/{args.ref}/rename"
    return _print(args, api.json("POST", path, params={"name": args.name}))


def cmd_pause(api: Api, args: argparse.Namespace) -> int:
    return _print(args, api.json("POST", f"/containers/{args.ref}/pause"))


def cmd_unpause(api: Api, args: argparse.Namespace) -> int:
    return _print(args, api.json("POST", f"/containers/{args.ref}/unpause"))


def cmd_update(api: Api, args: argparse.Namespace) -> int:
    body = {"memory_bytes": args.memory, "cpus": args.cpus, "pids": args.pids_limit}
    body = {k: v for k, v in body.items() if v is not None}
    return _print(args, api.json("POST", f"/containers/{args.ref}/update", json=body))


def cmd_top(api: Api, args: argparse.Namespace) -> int:
    params = {"ps_args": " ".join(args.ps_args)} if args.ps_args else {}
    top = api.json("GET", f"/containers/{args.ref}/top", params=params)
    if args.json:
        output.print_json(top)
    else:
        output.print_table([tuple(row) for row in top["processes"]], tuple(top["titles"]))
    return 0


COMMANDS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "restart": cmd_restart,
    "rename": cmd_rename,
    "pause": cmd_pause,
    "unpause": cmd_unpause,
    "update": cmd_update,
    "top": cmd_top,
    **files.COMMANDS,
}
