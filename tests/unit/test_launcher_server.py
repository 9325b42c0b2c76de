"""runtime/launcher/server.py: the loop's dispatch of what the selector found ready."""

from __future__ import annotations

import os
import selectors
import socket

from runtime.launcher.ready import Ready, Source
from tests.unit.test_launcher_watch import _close_launchers, launcher_with

__all__ = ["_close_launchers"]  # the fixture that closes what launcher_with made


def test_a_readiness_after_the_exit_in_the_same_wake_up_is_ignored() -> None:
    """A pooled child that dies while filling makes its pidfd and its channel
    readable at once; when the exit is handled first, discard() unregisters
    and closes the channel, and the loop must not hand the channel's stale
    readiness on (unregistering fd -1 took the whole launcher down).  Each
    handler here closes the other's fd, so whichever runs first, only one runs."""
    launcher = launcher_with()
    exit_r, exit_w = os.pipe()
    channel, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    handled: list[str] = []

    def on_exit(mask: int) -> None:
        handled.append("exit")
        launcher.selector.unregister(channel)
        channel.close()

    def on_channel(mask: int) -> None:
        handled.append("channel")
        launcher.selector.unregister(channel)
        launcher.selector.unregister(exit_r)
        os.close(exit_r)

    launcher.selector.register(exit_r, selectors.EVENT_READ, Ready(Source.POOL, on_exit))
    launcher.selector.register(channel, selectors.EVENT_READ, Ready(Source.POOL, on_channel))
    os.close(exit_w)  # EOF: readable, as a pidfd is once its child exited
    child_end.close()  # EOF on the channel too
    ready = launcher.selector.select(timeout=5)
    assert len(ready) == 2
    launcher.turn(ready)
    assert len(handled) == 1
    if handled == ["exit"]:
        launcher.selector.unregister(exit_r)
        os.close(exit_r)
