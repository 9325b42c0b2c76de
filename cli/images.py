"""``mydocker pull``, ``tag``, ``rmi``, ``save``, ``load`` and the pull ``run`` does
for a missing image.

``pull`` reads the service's NDJSON progress (``POST /images/pull?progress=true``)
and draws one line per layer: on a terminal the lines are redrawn in place
(bytes, rate, done or cached), elsewhere each layer's last state is printed once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cli import output
from cli.client import Api, ServiceError


def add_parsers(sub: Any) -> None:
    pull = sub.add_parser("pull", help="pull an image from its registry, a bar per layer")
    pull.add_argument("reference", help="e.g. busybox, localhost:5000/app:1")
    pull.add_argument("--username", help="registry user (the password comes from stdin)")
    tag = sub.add_parser("tag", help="give a pulled image another name")
    tag.add_argument("source")
    tag.add_argument("target")
    rmi = sub.add_parser("rmi", help="remove images (a tag, or the image and its layers)")
    rmi.add_argument("refs", nargs="+")
    rmi.add_argument("-f", "--force", action="store_true", help="by id even with several tags")
    save = sub.add_parser("save", help="an image as a tarball docker load and OCI tools read")
    save.add_argument("image")
    save.add_argument("-o", "--output", default="-", help="a file (default: stdout)")
    load = sub.add_parser("load", help="load a docker save tarball or an OCI layout (a tar)")
    load.add_argument("-i", "--input", default="-", help="a file (default: stdin)")


class Bars:
    """One line per layer; on a terminal, redrawn in place as steps come in."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.lines: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.drawn = 0

    def step(self, step: dict[str, Any]) -> None:
        layer, status = str(step["layer"]), str(step["status"])
        current, total = int(step.get("current", 0)), int(step.get("total", 0))
        self.started.setdefault(layer, time.monotonic())
        text = f"{layer}: {status}"
        if status == "Downloading" and total:
            elapsed = max(time.monotonic() - self.started[layer], 1e-3)
            text += f" {_size(current)}/{_size(total)} ({_size(int(current / elapsed))}/s)"
        elif status == "Already exists":
            text = f"{layer}: Already exists (cached)"
        self.lines[layer] = text
        if self.tty:
            self.redraw()

    def redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}A")
        for text in self.lines.values():
            self.stream.write(f"\x1b[2K{text}\n")
        self.drawn = len(self.lines)
        self.stream.flush()

    def finish(self) -> None:
        if not self.tty:
            for text in self.lines.values():
                self.stream.write(text + "\n")
        self.stream.flush()


def pull(api: Api, reference: str, auth: dict[str, str] | None, stream: Any) -> dict[str, Any]:
    """Pull with bars on ``stream``; the image, or ``ServiceError`` as the service said it."""
    bars = Bars(stream)
    body: dict[str, Any] = {"reference": reference}
    if auth:
        body["auth"] = auth
    final: dict[str, Any] = {}
    with api.stream("POST", "/images/pull", params={"progress": "true"}, json=body) as response:
        for line in response.iter_lines():
            if not line.strip():
                continue
            message = json.loads(line)
            if "layer" in message:
                bars.step(message)
            else:
                final = message
    bars.finish()
    if "error" in final:
        raise ServiceError(int(final.get("status_code", 500)), str(final["error"]))
    image: dict[str, Any] = final.get("image", {})
    return image


def ensure(api: Api, reference: str) -> None:
    """``run`` of an image that is not here pulls it first, as docker does."""
    try:
        api.request("GET", f"/images/{reference}")
        return
    except ServiceError as err:
        if err.status != 404:
            raise
    sys.stderr.write(f"Unable to find image '{reference}' locally\n")
    pull(api, reference, None, sys.stderr)


def cmd_pull(api: Api, args: argparse.Namespace) -> int:
    auth = None
    if args.username:
        auth = {"username": args.username, "password": sys.stdin.readline().rstrip("\n")}
    image = pull(api, args.reference, auth, sys.stdout if not args.json else sys.stderr)
    if args.json:
        output.print_json(image)
    else:
        digest = image["digests"][0].split("@", 1)[1] if image.get("digests") else image.get("id")
        print(f"Digest: {digest}")
        print(f"Status: pulled {args.reference} ({image.get('id')})")
    return 0


def cmd_tag(api: Api, args: argparse.Namespace) -> int:
    image = api.json("POST", f"/images/{args.source}/tag", json={"tag": args.target})
    if args.json:
        output.print_json(image)
    return 0


def cmd_rmi(api: Api, args: argparse.Namespace) -> int:
    for ref in args.refs:
        api.request("DELETE", f"/images/{ref}", params={"force": "true"} if args.force else {})
        print(ref)
    return 0


def cmd_save(api: Api, args: argparse.Namespace) -> int:
    if args.output == "-" and sys.stdout.isatty():
        raise SystemExit("mydocker save: refusing to write a tarball to a terminal; give -o FILE")
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    try:
        with api.stream("GET", f"/images/{args.image}/export") as response:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    return 0


def cmd_load(api: Api, args: argparse.Namespace) -> int:
    stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    try:
        images = api.json(
            "POST",
            "/images/load",
            content=iter(lambda: stream.read(1 << 20), b""),
            headers={"Content-Type": "application/x-tar"},
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if args.json:
        output.print_json(images)
    else:
        for image in images:
            for tag in image.get("tags") or [image.get("id", "")]:
                print(f"Loaded image: {tag}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n}B"


COMMANDS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "pull": cmd_pull,
    "tag": cmd_tag,
    "rmi": cmd_rmi,
    "save": cmd_save,
    "load": cmd_load,
}
