"""``Interactive``: attaching to a container or an exec alike.

    AttachTarget   what an attach needs: the target's output files, whether it
                   takes input or has a tty, and a future for its end
    attach_target  resolve a container or exec ref to one
    write_input, close_input   bytes for its stdin (or its pty), then EOF
    resize         TIOCSWINSZ on its pty (its foreground process gets SIGWINCH)

Input and resizes go through the launcher, which holds the target's stdin
pipe or pty master (runtime/terminal.py).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidArgument, InvalidState
from runtime.exits import Exits
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.output import Output


@dataclass(frozen=True)
class AttachTarget:
    """A container or exec to attach to: where its output is, what it takes.

    ``done`` completes with its record (``exit_code``, ``signal``, ``error``)
    once it has exited."""

    id: str
    kind: str  # "container" or "exec"
    tty: bool
    stdin: bool
    log_paths: tuple[str, ...]
    done: Future[Any]


class Interactive:
    def __init__(self, output: Output, launcher: LauncherClient, exits: Exits) -> None:
        self._output = output
        self.launcher = launcher
        self._exits = exits

    def attach_target(self, kind: str, ref: str) -> AttachTarget:
        """What attaching to a container (``kind="container"``) or an exec needs."""
        target = self._output.target(kind, ref)
        done: Future[Any] = (
            self._exits.exec_exit_future(target.id)
            if target.kind == "exec"
            else self._exits.exit_future(target.id)
        )
        return AttachTarget(
            id=target.id,
            kind=target.kind,
            tty=target.tty,
            stdin=target.stdin,
            log_paths=tuple(target.log_paths()),
            done=done,
        )

    def write_input(self, target: AttachTarget, data: bytes) -> None:
        """Bytes for the target's stdin (its pty with ``tty``)."""
        _check_stdin(target)
        self.launcher.request(protocol.Write(target.id, data))

    def close_input(self, target: AttachTarget) -> None:
        _check_stdin(target)
        self.launcher.request(protocol.CloseStdin(target.id))

    def resize(self, target: AttachTarget, rows: int, cols: int) -> None:
        """TIOCSWINSZ on the target's pty; its foreground process gets SIGWINCH."""
        if not target.tty:
            raise InvalidState(f"{target.kind} {target.id} has no tty")
        if not (0 < rows <= 0xFFFF and 0 < cols <= 0xFFFF):
            raise InvalidArgument("rows", "rows and cols must be in 1..65535")
        self.launcher.request(protocol.Resize(target.id, rows, cols))


def _check_stdin(target: AttachTarget) -> None:
    if not target.stdin:
        raise InvalidState(f"{target.kind} {target.id} was not started with stdin or tty")
