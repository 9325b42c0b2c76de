"""The events the parts publish, built from their records in one place.

    container_event  create, start, die, kill, stop, destroy, and the lifecycle
                     verbs' (runtime/lifecycle.py, runtime/files.py): with the
                     container's ``image`` and its labels as ``label.<key>``
    exec_event       exec_create, exec_start, exec_die: with ``container``
                     and ``container_name``
    die_attributes   what a ``die`` says: exit_code, signal, oom_killed,
                     timed_out, error

Each part publishes right after the record that the event reports is
written (record, then report), so a reader who sees an event finds the
record saying the same; one ``EventLog.publish`` per event, a few µs
(docs/observability.md).
"""

from __future__ import annotations

from typing import Any

from runtime.events import Event, EventType, now_event
from runtime.records import ContainerRecord, ExecRecord
from runtime.spec import DEFAULT_IMAGE


def _image_and_labels(record: ContainerRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {"image": record.spec.image or DEFAULT_IMAGE}
    for key, value in record.spec.labels.items():
        attributes[f"label.{key}"] = value
    return attributes


def container_event(action: str, record: ContainerRecord, **attributes: Any) -> Event:
    return now_event(
        EventType.CONTAINER,
        action,
        record.id,
        record.name,
        **_image_and_labels(record),
        **attributes,
    )


def die_attributes(record: ContainerRecord) -> dict[str, Any]:
    """An exited record's ending; ``None`` values are left out of the event."""
    return {
        "exit_code": record.exit_code,
        "signal": record.signal,
        "oom_killed": record.results.get("oom_killed"),
        "timed_out": record.results.get("timed_out") or None,
        "error": record.error,
    }


def exec_event(
    action: str, record: ExecRecord, container_name: str | None, **attributes: Any
) -> Event:
    return now_event(
        EventType.EXEC,
        action,
        record.id,
        "",
        container=record.container_id,
        container_name=container_name,
        **attributes,
    )
