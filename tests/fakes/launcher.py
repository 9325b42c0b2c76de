"""``FakeLauncher``: a ``LauncherClient`` that never connects, for ``Runtime.open(..., launcher=)``.

The Runtime's unit tests (test_runtime_exit_races, test_signalling_kill_many,
test_exits_auto_remove, test_planning_limits, test_launches_states) give the
runtime a launcher of their own.  Subclassing the real client lets mypy hold each fake to its
signatures (``request`` typed both ways), with no ``type: ignore`` where the
fake is passed in:

    answer(op)           a subclass's reply to one request (or it raises, as a refusal would)
    request(op, ...)     ``answer``, checked to be the op's own reply class, then ``on_reply``
    submit(op, ...)      ``request``'s outcome as a future, already done (as the
                         reader thread would complete it)
    notify(op)           a request nobody waits for (``ack``): ``notified`` keeps them
    connect, close       nothing to connect to or close
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from runtime.launcher.client import REQUEST_TIMEOUT, LauncherClient
from runtime.launcher.protocol import Event, Reply, Request

R = TypeVar("R", bound=Reply)


def _no_events(event: Event) -> None:
    raise AssertionError(f"a fake launcher has no reader thread to deliver {event}")


class FakeLauncher(LauncherClient):
    """Answers each request with ``answer``; a test sends events itself
    (``runtime.exits.on_event``), as the reader thread would."""

    def __init__(self) -> None:
        super().__init__("/nonexistent", on_event=_no_events)
        self.notified: list[Request[Any]] = []

    def answer(self, op: Request[Any]) -> Reply:
        raise AssertionError(f"unexpected request {op}")

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def request(
        self,
        op: Request[R],
        timeout: float = REQUEST_TIMEOUT,
        on_reply: Callable[[R], None] | None = None,
    ) -> R:
        reply = self.answer(op)
        # What the real client's decoding guarantees (protocol.Request.reply).
        assert isinstance(reply, op.REPLY), (op, reply)
        typed = cast(R, reply)
        if on_reply is not None:
            on_reply(typed)
        return typed

    def submit(self, op: Request[R], on_reply: Callable[[R], None] | None = None) -> Future[R]:
        future: Future[R] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(self.request(op, on_reply=on_reply))
        except Exception as err:
            future.set_exception(err)
        return future

    def notify(self, op: Request[Any]) -> None:
        self.notified.append(op)
