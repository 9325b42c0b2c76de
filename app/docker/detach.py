"""Detach keys: the byte sequence on an attached TTY's stdin that ends the attach.

Docker scans the stdin of an attach or exec with a TTY for a sequence,
``ctrl-p,ctrl-q`` unless the client names another (``detachKeys`` of attach's
query or the exec's body); once it has all come, the connection is closed and
the container keeps running.  The bytes of a sequence are not forwarded; a
prefix is held back until the next byte shows whether it was one (moby's
container/stream/attach.go ``copyEscapable`` over term.NewEscapeProxy).  Without
a TTY stdin is copied as it is.

    keys("ctrl-p,ctrl-q")   b"\\x10\\x11"   (docker's term.ToBytes; 400 on anything else)
    Escape(keys).feed(data) (bytes to forward, whether the sequence is complete)
"""

from __future__ import annotations

from app.docker.errors import DockerError

DEFAULT = "ctrl-p,ctrl-q"
#: ``ctrl-`` + one of these is the byte ``0x01 + index`` would be, for a..z, then @[\]^_.
_CTRL = {chr(ord("a") + i): i + 1 for i in range(26)} | {
    "@": 0,
    "[": 27,
    "\\": 28,
    "]": 29,
    "^": 30,
    "_": 31,
}


def keys(spec: str) -> bytes:
    """``"ctrl-p,ctrl-q"`` → ``b"\\x10\\x11"``; a single printable character stands for itself."""
    out = bytearray()
    for part in spec.split(","):
        key = part.strip().lower()
        if key.startswith("ctrl-") and key[5:] in _CTRL:
            out.append(_CTRL[key[5:]])
        elif len(part) == 1 and part.isprintable():
            out += part.encode()
        else:
            raise DockerError(400, f"invalid detach keys {spec!r}: {part!r} is not a valid key")
    return bytes(out)


class Escape:
    """Scans a stream for ``sequence``; what is not part of it passes through."""

    def __init__(self, sequence: bytes) -> None:
        self.sequence = sequence
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.sequence.startswith(candidate):
                self.held = candidate
                if candidate == self.sequence:
                    self.held = b""
                    return bytes(out), True
                continue
            # Not (a prefix of) the sequence: what was held goes through, and
            # this byte may start a new match.
            out += self.held
            self.held = b""
            if self.sequence.startswith(bytes([byte])):
                self.held = bytes([byte])
            else:
                out.append(byte)
        return bytes(out), False
