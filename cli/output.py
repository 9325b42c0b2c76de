"""What the CLI prints: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

CONTAINER_COLUMNS = ("CONTAINER ID", "NAME", "COMMAND", "STATUS", "CREATED")
IMAGE_COLUMNS = ("NAME", "DIGEST", "ID", "CREATED", "BUILTIN")
COMMAND_WIDTH = 30


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> None:
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [columns, *rows]:
        line = "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        print(line.rstrip())


def container_rows(containers: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            c["id"][:12],
            c["name"] if c["name"] != c["id"] else "",
            _command(c.get("command") or []),
            status(c),
            ago(c.get("created_at")),
        )
        for c in containers
    ]


def image_rows(images: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per name: a pulled image once per tag (or by its id when it has none)."""
    rows: list[tuple[str, ...]] = []
    for i in images:
        digests = i.get("digests") or []
        digest = digests[0].split("@", 1)[1][:19] if digests else ""
        image_id = (i.get("id") or "").removeprefix("sha256:")[:12]
        for name in i.get("tags") or [i.get("name")]:
            rows.append(
                (
                    str(name),
                    digest,
                    image_id,
                    ago(i.get("created_at")),
                    "yes" if i.get("builtin") else "",
                )
            )
    return rows


def _command(command: list[str]) -> str:
    text = json.dumps(" ".join(command))
    return text if len(text) <= COMMAND_WIDTH else text[: COMMAND_WIDTH - 4] + '..."'


def status(container: dict[str, Any]) -> str:
    """``Up 5 seconds``, ``Exited (3) 2 minutes ago``, ``Created``, as ``docker ps``."""
    state = container.get("status")
    if state == "running":
        return "Up " + ago(container.get("started_at"), suffix="")
    if state == "exited":
        code = container.get("exit_code")
        shown = "?" if code is None else str(code)
        return f"Exited ({shown}) {ago(container.get('finished_at'))}".rstrip()
    return str(state).capitalize()


def ago(stamp: str | None, suffix: str = " ago", now: datetime | None = None) -> str:
    if not stamp:
        return ""
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}{suffix}"
    if seconds < 1:
        return "Less than a second" + suffix
    return f"{seconds} second{'s' if seconds != 1 else ''}{suffix}"


def event_line(event: dict[str, Any]) -> str:
    """``docker events``' line: time, type, action, id, then (attributes)."""
    attributes = dict(event.get("attributes") or {})
    if event.get("name"):
        attributes["name"] = event["name"]
    inside = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
    text = f"{event['time']} {event['type']} {event['action']} {event['id']}"
    return f"{text} ({inside})" if inside else text
