"""Running an nft script: two ways that give the same result.

    NftError        an nft script the kernel (or nft's parser) refused; carries nft's text
    Nft             what the firewall needs: run(script) in one transaction
    Libnftables     libnftables.so.1 through ctypes, one context kept open (the default)
    NftCommand      ``nft -f -`` as a subprocess, the same script on its stdin

Why a ctypes binding of its own and not runtime/libc.py: this is another
library (libnftables, from Debian's libnftables1, which the nftables package
depends on) with its own context object and error buffer, and nothing of libc.
Why not only ``nft -f -``: a fork+exec of nft costs milliseconds here, the
library call a fraction of that (docs/networking.md, "Measured cost"), and a
launch with published ports pays it once.

libnftables(3): ``nft_run_cmd_from_buffer`` parses the whole buffer and sends
it as one netlink batch, so a script is applied atomically or not at all,
exactly like ``nft -f``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import threading
from typing import Protocol


class NftError(Exception):
    """nft refused a script: ``str(err)`` is "<what>: <nft's own message>"."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"{what}: {message.strip() or 'nft failed'}")
        self.what = what
        self.message = message


class Nft(Protocol):
    def run(self, what: str, script: str) -> None:
        """Apply ``script`` in one transaction; ``what`` names the step in errors."""


# <nftables/libnftables.h>
NFT_CTX_DEFAULT = 0


class Libnftables:
    """One libnftables context, kept for the process's life.

    A context is not thread-safe (libnftables(3) says nothing of locking and
    keeps a cache and an error buffer in it), hence the lock.  Its netlink
    socket acts on the network namespace it was opened in, like any netlink
    socket (docs/networking.md): make the context in the namespace to change.
    """

    def __init__(self, soname: str | None = None) -> None:
        path = soname or ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(path)
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.restype = ctypes.c_int
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.restype = ctypes.c_int
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self._lib = lib
        self._lock = threading.Lock()
        ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise NftError("nft_ctx_new", "could not create a libnftables context")
        self._ctx: int | None = ctx
        # Buffered, so that messages come back to us instead of going to the
        # process's stdout/stderr (the launcher's log).
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)

    def run(self, what: str, script: str) -> None:
        with self._lock:
            if self._ctx is None:
                raise NftError(what, "the libnftables context is closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
            # Reading a buffer also empties it for the next command; our
            # scripts print nothing, but a buffer left unread would grow.
            message = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
            self._lib.nft_ctx_get_output_buffer(self._ctx)
        if rc != 0:
            raise NftError(what, message.decode(errors="replace"))

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


class NftCommand:
    """``nft -f -``: the script on stdin, nft's complaint from stderr."""

    def __init__(self, nft: str = "nft") -> None:
        self._nft = nft

    def run(self, what: str, script: str) -> None:
        try:
            done = subprocess.run(
                [self._nft, "-f", "-"], input=script, capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            hint = f"{self._nft} not found (scripts/setup installs nftables)"
            raise NftError(what, hint) from None
        if done.returncode != 0:
            raise NftError(what, done.stderr)
