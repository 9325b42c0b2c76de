"""``mydocker``: docker-like commands over the service's HTTP API.

    mydocker run [-i] [-t] [-d] [--rm] [--name N] [--hostname H] [--image I]
                 [-e K=V] [-w DIR] [-u USER] [--cap-add CAP] [--cap-drop CAP]
                 [--memory 64m] [--cpus 0.5] [--pids-limit N] [--timeout S] -- CMD...
    mydocker --action run --name N -- /bin/sh      (the tutorial's own form)
    mydocker ps [-a] | logs [-f] [-t] [--since T] [--until T] REF | wait REF | stop REF
    mydocker kill [-s SIG] [-l KEY[=VALUE]]... [REF...]   (several, or -l: one request)
    mydocker rm [-f] REF... | inspect REF | exec [-i] [-t] [-d] REF -- CMD...
    mydocker attach REF | images | import NAME FILE
    mydocker events [--since T] [--until T] [--filter KEY=VALUE]...   (one line each)
    mydocker volume ... and run -v/--restart/--init: cli/volumes.py

Exit codes follow docker's: ``run`` and ``exec`` exit with the command's
status (128+N when killed by signal N); 125 when the service refused or
could not be reached, 126 when the command cannot be executed, 127 when it
is not found.  Other commands exit 0, or 1 on an error.  ``--json`` prints
the service's JSON instead of tables.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from cli import attach, images, network, output, streams, verbs, volumes
from cli.client import (
    DEFAULT_HOST,
    Api,
    ServiceError,
    Unreachable,
    UsageError,
    token_from_env,
)

EXIT_REFUSED = 125
EXIT_ERROR = 1


def _size(text: str) -> int:
    """``64m`` -> 67108864, as docker reads ``--memory`` (b, k, m, g; powers of 1024)."""
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    value = text.strip().lower()
    factor = 1
    if value and value[-1] in units:
        factor = units[value[-1]]
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64m, 1g)") from None
    return int(number * factor)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    if not sep:
        value = os.environ.get(key, "")  # docker: -e NAME passes the caller's value
    return key, value


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 125, as docker's do (2 is argparse's own)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_REFUSED, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mydocker",
        description="Run Linux containers through a mydocker service.",
        epilog="Exit codes: the command's own for run/exec; 125 refused, "
        "126 not executable, 127 not found; 1 for other errors.",
    )
    parser.add_argument(
        "--host",
        "-H",
        default=os.environ.get("MYDOCKER_HOST", DEFAULT_HOST),
        help="service URL or unix socket path (MYDOCKER_HOST; default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub = parser.add_subparsers(dest="action", metavar="COMMAND")

    # No -h for help here: docker's -h is --hostname.
    run = sub.add_parser("run", help="run a command in a new container", add_help=False)
    run.add_argument("--help", action="help", help="show this help and exit")
    _container_options(run)
    run.add_argument("-d", "--detach", action="store_true", help="print the id and return")
    run.add_argument("--rm", action="store_true", help="remove the container once it exits")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")

    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="also exited and created ones")
    ps.add_argument("-q", "--quiet", action="store_true", help="ids only")

    logs = sub.add_parser("logs", help="print a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int)
    logs.add_argument("-t", "--timestamps", action="store_true", help="each line after its time")
    since_help = "lines since T: unix seconds, RFC 3339, or a duration ago (10m, 1.5h)"
    logs.add_argument("--since", type=streams.log_time, help=since_help)
    logs.add_argument("--until", type=streams.log_time, help="lines until T (as --since)")
    logs.add_argument("ref")

    for name, text in (
        ("wait", "wait for exit and print the exit code"),
        ("inspect", "print a container as JSON"),
    ):
        sub.add_parser(name, help=text).add_argument("ref")

    kill = sub.add_parser("kill", help="send a signal (default SIGKILL)")
    kill.add_argument("-s", "--signal", default="SIGKILL")
    kill.add_argument(
        "-l",
        "--label",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="every running container with this label (repeatable: all must hold)",
    )
    kill.add_argument("refs", nargs="*", metavar="REF")

    stop = sub.add_parser("stop", help="SIGTERM, then SIGKILL after the grace period")
    stop.add_argument("-t", "--time", type=float, default=10)
    stop.add_argument("ref")

    rm = sub.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")
    rm.add_argument("refs", nargs="+")

    ex = sub.add_parser("exec", help="run a command in a running container")
    ex.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    ex.add_argument("-d", "--detach", action="store_true", help="print the exec id and return")
    ex.add_argument("-e", "--env", type=_env_pair, action="append", default=[])
    ex.add_argument("-w", "--workdir")
    ex.add_argument("-u", "--user")
    ex.add_argument("ref")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")

    at = sub.add_parser("attach", help="attach to a running container's terminal or output")
    at.add_argument("--no-logs", action="store_true", help="do not replay earlier output")
    at.add_argument("ref")

    ev = sub.add_parser("events", help="print events as they happen, one line each")
    ev.add_argument("--since", type=streams.log_time, help="replay from T (as logs --since)")
    ev.add_argument("--until", type=streams.log_time, help="end at T (as --since)")
    ev.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="type=container|exec|image, event=ACTION, container=REF, label=KEY[=VALUE] "
        "(repeatable: a key given twice takes either value)",
    )

    sub.add_parser("images", help="list images")
    imp = sub.add_parser("import", help="import a root filesystem tarball as an image")
    imp.add_argument("name")
    imp.add_argument("file", help="a tar or tar.gz file, or - for stdin")
    verbs.add_parsers(sub)
    network.add_parsers(sub)
    images.add_parsers(sub)
    volumes.add_parser(sub)
    for command in sub.choices.values():
        # --json after the command too (mydocker ps --json); the global one wins if both.
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return parser


def _container_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--name")
    run.add_argument("--hostname", "-h", dest="hostname")
    run.add_argument("--image")
    run.add_argument("-e", "--env", type=_env_pair, action="append", default=[])
    run.add_argument("-w", "--workdir")
    run.add_argument("-u", "--user", help="uid[:gid]")
    run.add_argument("--cap-add", action="append", default=[], help="e.g. SYS_ADMIN")
    run.add_argument("--cap-drop", action="append", default=[], help="e.g. NET_RAW, or ALL")
    run.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    run.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    run.add_argument("-m", "--memory", type=_size, help="memory limit, e.g. 64m")
    run.add_argument("--cpus", type=float)
    run.add_argument("--pids-limit", type=int)
    run.add_argument("--timeout", type=float, help="seconds before the container is killed")
    network.add_run_options(run)
    volumes.add_run_options(run)


def tutorial_form(argv: list[str]) -> list[str]:
    """``--action run ...`` (mydocker-c's own syntax) -> ``run ...``.

    The tutorial's ``run`` shares the caller's terminal, so the rewritten
    command gets ``-i -t`` when stdin is a terminal."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            out += argv[index:]
            break
        action = None
        if arg == "--action" and index + 1 < len(argv):
            action = argv[index + 1]
            index += 2
        elif arg.startswith("--action="):
            action = arg.split("=", 1)[1]
            index += 1
        if action is None:
            out.append(arg)
            index += 1
            continue
        # The global options (--host, --json) must stay before the command.
        split = _first_command_option(out)
        extra = ["-i", "-t"] if action == "run" and os.isatty(0) else []
        out = out[:split] + [action, *extra] + out[split:]
    return out


def _first_command_option(args: list[str]) -> int:
    index = 0
    while index < len(args):
        if args[index] in ("--host", "-H"):
            index += 2
        elif args[index] == "--json" or args[index].startswith("--host="):
            index += 1
        else:
            break
    return index


def _command(cmd: list[str]) -> list[str]:
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given: put it after --, e.g. mydocker run -it -- /bin/sh")
    return cmd


# -- commands ------------------------------------------------------------------
def cmd_run(api: Api, args: argparse.Namespace) -> int:
    # An image of the service's may bring its own command (Entrypoint, Cmd).
    command = [] if args.image and args.cmd in ([], ["--"]) else _command(args.cmd)
    body: dict[str, Any] = {"command": command, "tty": args.tty, "stdin": args.interactive}
    if args.image:
        images.ensure(api, args.image)
    for key in ("name", "hostname", "image", "workdir", "user"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    if args.env:
        body["env"] = dict(args.env)
    for key in ("cap_add", "cap_drop"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    limits = {
        k: v
        for k, v in (
            ("memory_bytes", args.memory),
            ("cpus", args.cpus),
            ("pids", args.pids_limit),
            ("timeout_seconds", args.timeout),
        )
        if v is not None
    }
    if limits:
        body["limits"] = limits
    body.update(network.run_fields(args))
    body.update(volumes.run_fields(args))
    size = attach.terminal_size() if args.tty else None
    if size:
        body["tty_size"] = {"rows": size[0], "cols": size[1]}
    if args.rm and args.detach:
        # Nobody stays to remove it: the service does, at exit.  Attached, the
        # CLI removes it after the last output (the service would race the attach).
        body["auto_remove"] = True
    try:
        container = api.json("POST", "/containers", json=body)
    except (ServiceError, Unreachable) as err:
        _error(str(err))
        return EXIT_REFUSED
    if container.get("error") and container.get("status") == "exited":
        # The command could not be executed: 126 or 127, as docker run.
        _error(container["error"])
        code = container.get("exit_code")
        _remove_if(api, args.rm, container["id"])
        return code if isinstance(code, int) else EXIT_REFUSED
    if args.detach:
        print(container["id"])
        return 0
    outcome = attach.session(
        api,
        f"/containers/{container['id']}/attach",
        tty_mode=args.tty,
        interactive=args.interactive,
    )
    return _finish(api, outcome, container["id"], "container", remove=args.rm)


def _finish(api: Api, outcome: attach.Outcome, ident: str, kind: str, remove: bool) -> int:
    if outcome.detached:
        _error(
            f"detached; the {kind} keeps running (mydocker "
            + ("attach" if kind == "container" else "exec logs")
            + f" {ident[:12]})"
        )
        return 0
    if not outcome.exited:
        _error(outcome.error or "the attach connection ended before the exit status came")
        return EXIT_REFUSED
    if outcome.error:
        _error(outcome.error)
    _remove_if(api, remove, ident)
    if outcome.exit_code is None:
        return EXIT_REFUSED
    return int(outcome.exit_code)


def _remove_if(api: Api, remove: bool, container_id: str) -> None:
    if not remove:
        return
    try:
        api.request("DELETE", f"/containers/{container_id}", params={"force": "true"})
    except (ServiceError, Unreachable) as err:
        _error(f"could not remove {container_id[:12]}: {err}")


def cmd_exec(api: Api, args: argparse.Namespace) -> int:
    command = _command(args.cmd)
    body: dict[str, Any] = {"command": command, "tty": args.tty, "stdin": args.interactive}
    if args.env:
        body["env"] = dict(args.env)
    for key in ("workdir", "user"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    size = attach.terminal_size() if args.tty else None
    if size:
        body["tty_size"] = {"rows": size[0], "cols": size[1]}
    try:
        record = api.json("POST", f"/containers/{args.ref}/exec", json=body)
    except (ServiceError, Unreachable) as err:
        _error(str(err))
        return EXIT_REFUSED
    if record.get("error") and record.get("status") == "exited":
        _error(record["error"])
        code = record.get("exit_code")
        return code if isinstance(code, int) else EXIT_REFUSED
    if args.detach:
        print(record["id"])
        return 0
    outcome = attach.session(
        api, f"/execs/{record['id']}/attach", tty_mode=args.tty, interactive=args.interactive
    )
    return _finish(api, outcome, record["id"], "exec", remove=False)


def cmd_attach(api: Api, args: argparse.Namespace) -> int:
    container = api.json("GET", f"/containers/{args.ref}")
    outcome = attach.session(
        api,
        f"/containers/{container['id']}/attach",
        tty_mode=bool(container.get("tty")),
        interactive=bool(container.get("stdin") or container.get("tty")),
        logs=not args.no_logs,
    )
    return _finish(api, outcome, container["id"], "container", remove=False)


def cmd_ps(api: Api, args: argparse.Namespace) -> int:
    params = {} if args.all else {"status": "running"}
    containers = api.json("GET", "/containers", params=params)
    if args.json:
        output.print_json(containers)
    elif args.quiet:
        for c in containers:
            print(c["id"][:12])
    else:
        output.print_table(output.container_rows(containers), output.CONTAINER_COLUMNS)
    return 0


def cmd_wait(api: Api, args: argparse.Namespace) -> int:
    container = api.json("POST", f"/containers/{args.ref}/wait")
    if args.json:
        output.print_json(container)
    else:
        print(container.get("exit_code"))
    return 0


def cmd_kill(api: Api, args: argparse.Namespace) -> int:
    """One REF: the single kill.  Several, or ``--label``: one bulk request
    (``POST /containers/kill``); each ref that names no running container
    is an error line, as docker kill prints one per ref it could not kill."""
    if not args.refs and not args.label:
        raise UsageError("kill: give a REF or --label KEY[=VALUE]")
    if len(args.refs) == 1 and not args.label:
        [ref] = args.refs
        container = api.json("POST", f"/containers/{ref}/kill", params={"signal": args.signal})
        output.print_json(container) if args.json else print(container["id"])
        return 0
    body: dict[str, Any] = {"labels": args.label, "signal": args.signal}
    if args.refs:
        body["ids"] = args.refs
    result = api.json("POST", "/containers/kill", json=body)
    if args.json:
        output.print_json(result)
    else:
        for container_id in result["killed"]:
            print(container_id)
    for ref in result["not_found"]:
        _error(f"{ref}: no such container")
    for container_id in result["not_running"]:
        _error(f"{container_id}: not running")
    return EXIT_ERROR if result["not_found"] or result["not_running"] else 0


def cmd_stop(api: Api, args: argparse.Namespace) -> int:
    container = api.json("POST", f"/containers/{args.ref}/stop", params={"timeout": args.time})
    output.print_json(container) if args.json else print(container["id"])
    return 0


def cmd_rm(api: Api, args: argparse.Namespace) -> int:
    failed = False
    for ref in args.refs:
        try:
            api.request("DELETE", f"/containers/{ref}", params={"force": str(args.force).lower()})
            print(ref)
        except ServiceError as err:
            _error(f"{ref}: {err}")
            failed = True
    return EXIT_ERROR if failed else 0


def cmd_inspect(api: Api, args: argparse.Namespace) -> int:
    output.print_json(api.json("GET", f"/containers/{args.ref}"))
    return 0


def cmd_images(api: Api, args: argparse.Namespace) -> int:
    images = api.json("GET", "/images")
    if args.json:
        output.print_json(images)
    else:
        output.print_table(output.image_rows(images), output.IMAGE_COLUMNS)
    return 0


def cmd_import(api: Api, args: argparse.Namespace) -> int:
    if args.file == "-":
        stream = sys.stdin.buffer
    else:
        stream = open(args.file, "rb")  # noqa: SIM115 - closed below
    try:
        head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        kind = "application/gzip" if head == b"\x1f\x8b" else "application/x-tar"
        image = api.json(
            "POST",
            "/images",
            params={"name": args.name},
            content=iter(lambda: stream.read(1 << 20), b""),
            headers={"Content-Type": kind},
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if args.json:
        output.print_json(image)
    else:
        print(image.get("name", args.name))
    return 0


COMMANDS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "run": cmd_run,
    "exec": cmd_exec,
    "attach": cmd_attach,
    "ps": cmd_ps,
    "logs": streams.cmd_logs,
    "wait": cmd_wait,
    "kill": cmd_kill,
    "stop": cmd_stop,
    "rm": cmd_rm,
    "inspect": cmd_inspect,
    "images": cmd_images,
    "events": streams.cmd_events,
    "import": cmd_import,
    "network": network.cmd_network,
    "port": network.cmd_port,
    **images.COMMANDS,
    "volume": volumes.cmd_volume,
    **verbs.COMMANDS,
}


def _error(message: str) -> None:
    sys.stderr.write(f"mydocker: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(tutorial_form(list(sys.argv[1:] if argv is None else argv)))
    if args.action is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        api = Api(args.host, token_from_env())
    except ValueError as err:
        _error(str(err))
        return EXIT_REFUSED if args.action in ("run", "exec") else EXIT_ERROR
    try:
        return COMMANDS[args.action](api, args)
    except UsageError as err:
        _error(str(err))
        return EXIT_REFUSED if args.action in ("run", "exec") else 2
    except (ServiceError, Unreachable) as err:
        _error(str(err))
        return EXIT_REFUSED if args.action in ("run", "exec") else EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (mydocker ps | head): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
