"""The CLI's file verbs: cp (both ways), diff, export.

    add_parsers(sub)   their subcommands;  COMMANDS   action -> function

``cp SRC DEST``: one side is ``CONTAINER:PATH``, the other a local path
(``-`` for a tar on stdin or stdout), as docker's.  Out of a container the
tar is unpacked here with tarfile's ``data`` filter (no member outside DEST,
no device, no link out of it); into one, the local file or directory is
packed and unpacked by the service inside the container's root.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable
from typing import Any

from cli.client import Api, ServiceError, UsageError

KIND_LETTERS = {"modified": "C", "added": "A", "deleted": "D"}


def add_parsers(sub: Any) -> None:
    cp = sub.add_parser("cp", help="copy files between a container and here")
    cp.add_argument("source", help="CONTAINER:PATH or a local path (- : a tar on stdin)")
    cp.add_argument("dest", help="CONTAINER:PATH or a local path (- : a tar on stdout)")
    sub.add_parser("diff", help="what a container changed in its root").add_argument("ref")
    export = sub.add_parser("export", help="a container's root as a tar")
    export.add_argument("ref")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")


def _split(spec: str) -> tuple[str, str] | None:
    """``(container, path)`` for ``CONTAINER:PATH``; None for a local path."""
    if spec.startswith(("/", ".")) or ":" not in spec:
        return None
    ref, _, path = spec.partition(":")
    return ref, path or "/"


def cmd_cp(api: Api, args: argparse.Namespace) -> int:
    source, dest = _split(args.source), _split(args.dest)
    if (source is None) == (dest is None):
        raise UsageError("cp: exactly one of SOURCE and DEST must be CONTAINER:PATH")
    if source is not None:
        return _copy_out(api, *source, args.dest)
    assert dest is not None
    return _copy_in(api, args.source, *dest)


def _copy_out(api: Api, ref: str, path: str, local: str) -> int:
    with api.stream("GET", f"/containers/{ref}/archive", params={"path": path}) as response:
        if local == "-":
            for chunk in response.iter_bytes():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return 0
        data = io.BytesIO(b"".join(response.iter_bytes()))
    with tarfile.open(fileobj=data) as tar:
        if os.path.isdir(local):
            tar.extractall(local, filter="data")
            return 0
        # A new name: unpack beside it, then give the top entry that name.
        parent = os.path.dirname(os.path.abspath(local))
        with tempfile.TemporaryDirectory(dir=parent) as scratch:
            tar.extractall(scratch, filter="data")
            entries = os.listdir(scratch)
            if len(entries) != 1:
                raise UsageError(f"cp: {ref}:{path} archived {len(entries)} entries, not one")
            os.replace(os.path.join(scratch, entries[0]), local)
    return 0


def _copy_in(api: Api, local: str, ref: str, path: str) -> int:
    if local == "-":
        body = sys.stdin.buffer.read()
        target = path
    else:
        if not os.path.lexists(local):
            raise UsageError(f"cp: {local}: no such file or directory")
        try:
            info = api.json("GET", f"/containers/{ref}/archive/stat", params={"path": path})
            into_dir = info["type"] == "directory"
        except ServiceError as err:
            if err.status != 404:
                raise
            into_dir = False
        # Into an existing directory under the file's own name; else as ``path``.
        name = os.path.basename(local.rstrip("/")) if into_dir else os.path.basename(path)
        target = path if into_dir else os.path.dirname(path.rstrip("/")) or "/"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(local, arcname=name)
        body = buffer.getvalue()
    api.request("PUT", f"/containers/{ref}/archive", params={"path": target}, content=body)
    return 0


def cmd_diff(api: Api, args: argparse.Namespace) -> int:
    for change in api.json("GET", f"/containers/{args.ref}/changes"):
        print(f"{KIND_LETTERS[change['kind']]} {change['path']}")
    return 0


def cmd_export(api: Api, args: argparse.Namespace) -> int:
    with api.stream("GET", f"/containers/{args.ref}/export") as response:
        out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
        try:
            for chunk in response.iter_bytes():
                out.write(chunk)
            out.flush()
        finally:
            if args.output:
                out.close()
    return 0


COMMANDS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "cp": cmd_cp,
    "diff": cmd_diff,
    "export": cmd_export,
}
