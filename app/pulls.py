"""A pull's progress as a stream of JSON lines, for the native and the Docker API.

``progress_lines(runtime, ref, credentials, line)`` runs the pull in a thread
of its own and yields one line per progress step as ``line`` renders it (the
native NDJSON or Docker's JSON messages), then the final line (the image, or
the error).  The HTTP status is sent before the pull starts, so a failure
mid-way can only be a line (Docker's ``errorDetail``): Docker's clients read
it so, and the native client too.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from app.errors import docker_message, status_for
from runtime.api import RuntimeApi
from runtime.errors import RuntimeFailure
from runtime.images import Image
from runtime.images.pull import PullProgress
from runtime.images.registry import Credentials

#: A rendered step; ``None`` leaves the step out of the stream.
Render = Callable[[PullProgress], dict[str, Any] | None]
Finish = Callable[[Image | None, RuntimeFailure | None], dict[str, Any]]


def progress_lines(
    runtime: RuntimeApi,
    ref: str,
    credentials: Credentials | None,
    render: Render,
    finish: Finish,
) -> Iterator[bytes]:
    steps: queue.Queue[PullProgress | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["image"] = runtime.pull_image(ref, credentials, steps.put)
        except RuntimeFailure as err:
            outcome["error"] = err
        except Exception as err:  # noqa: BLE001 - reported in the stream, never a 500 mid-way
            outcome["error"] = RuntimeFailure(f"pull failed: {type(err).__name__}: {err}")
        finally:
            steps.put(None)

    threading.Thread(target=work, name=f"pull {ref}", daemon=True).start()
    while (step := steps.get()) is not None:
        rendered = render(step)
        if rendered is not None:
            yield (json.dumps(rendered) + "\n").encode()
    yield (json.dumps(finish(outcome.get("image"), outcome.get("error"))) + "\n").encode()


def native_step(step: PullProgress) -> dict[str, Any]:
    return {"layer": step.id, "status": step.status, "current": step.current, "total": step.total}


def native_error(err: RuntimeFailure) -> dict[str, Any]:
    return {"error": str(err), "status_code": status_for(err)}


def docker_step(step: PullProgress) -> dict[str, Any]:
    line: dict[str, Any] = {"status": step.status, "id": step.id}
    if step.status in ("Downloading", "Extracting"):
        line["progressDetail"] = {"current": step.current, "total": step.total}
    else:
        line["progressDetail"] = {}
    return line


def docker_error(err: RuntimeFailure) -> dict[str, Any]:
    message = docker_message(err)
    return {"errorDetail": {"message": message}, "error": message}
