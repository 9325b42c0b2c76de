"""``OutputVerbs``: the ``Runtime`` facade's reading of a container's
output and its attach (a base class, as ``files.FileVerbs``):

    logs, log_lines, log_chunks                    output.Output
    attach_target, write_input, close_input,
    resize                                         interactive.Interactive

An exec's output goes through the same ``Output`` (execverbs.ExecVerbs)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from runtime.interactive import AttachTarget, Interactive
from runtime.layout import LOG_STREAMS
from runtime.output import Output


class OutputVerbs:
    output: Output
    interactive: Interactive

    # -- output ---------------------------------------------------------
    def logs(
        self,
        ref: str,
        stream: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        *,
        timestamps: bool = False,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[bytes]:
        """The container's output (``Output.read``)."""
        target = self.output.target("container", ref)
        return self.output.read(target, stream, tail, follow, timestamps, since, until)

    def log_lines(
        self,
        ref: str,
        streams: Sequence[str] = LOG_STREAMS,
        tail: int | None = None,
        follow: bool = False,
        since: int | None = None,
        until: int | None = None,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, int, bytes]]:
        """The output as ``(stream name, unix ns, line)``; see ``logs.dated``."""
        target = self.output.target("container", ref)
        return self.output.lines(target, streams, tail, follow, since, until, heartbeat)

    def log_chunks(
        self,
        ref: str,
        streams: Sequence[str] = LOG_STREAMS,
        tail: int | None = None,
        follow: bool = False,
        from_end: bool = False,
        heartbeat: bool = False,
    ) -> Iterator[tuple[str, bytes]]:
        """The output as ``(stream name, chunk)``; see ``Output.chunks``."""
        target = self.output.target("container", ref)
        return self.output.chunks(target, streams, tail, follow, from_end, heartbeat)

    # -- attach ---------------------------------------------------------
    def attach_target(self, kind: str, ref: str) -> AttachTarget:
        return self.interactive.attach_target(kind, ref)

    def write_input(self, target: AttachTarget, data: bytes) -> None:
        self.interactive.write_input(target, data)

    def close_input(self, target: AttachTarget) -> None:
        self.interactive.close_input(target)

    def resize(self, target: AttachTarget, rows: int, cols: int) -> None:
        self.interactive.resize(target, rows, cols)
