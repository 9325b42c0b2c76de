"""``mydocker logs`` and ``mydocker events``: the two commands that follow a
stream from the service until it ends or the user interrupts it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cli import output
from cli.client import Api, UsageError

_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600}


def log_time(text: str) -> str:
    """``--since``/``--until``: a duration ago (``10m``, as docker's) becomes
    unix seconds here; anything else goes to the service, which checks it."""
    unit = text[-1:]
    if unit in _DURATION_SECONDS:
        try:
            ago = float(text[:-1]) * _DURATION_SECONDS[unit]
        except ValueError:
            return text
        return f"{time.time() - ago:.6f}"
    return text


def logs_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"follow": "true" if args.follow else "false"}
    if args.tail is not None:
        params["tail"] = args.tail
    if args.timestamps:
        params["timestamps"] = "true"
    for name in ("since", "until"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return params


def cmd_logs(api: Api, args: argparse.Namespace) -> int:
    params = logs_params(args)
    try:
        with api.stream("GET", f"/containers/{args.ref}/logs", params=params) as response:
            for chunk in response.iter_bytes():
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
    except KeyboardInterrupt:
        return 0
    return 0


#: ``--filter`` keys as docker spells them → the query's parameters.
EVENT_FILTERS = {
    "type": "type",
    "event": "action",
    "action": "action",
    "container": "container",
    "label": "label",
}


def events_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in ("since", "until"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep or key not in EVENT_FILTERS:
            raise UsageError(f"--filter {item!r}: expected one of {', '.join(EVENT_FILTERS)}=VALUE")
        params.setdefault(EVENT_FILTERS[key], []).append(value)
    return params


def cmd_events(api: Api, args: argparse.Namespace) -> int:
    params = events_params(args)
    try:
        with api.stream("GET", "/events", params=params) as response:
            for raw in response.iter_lines():
                if not raw:
                    continue
                print(raw if args.json else output.event_line(json.loads(raw)), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0
