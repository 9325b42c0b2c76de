"""Helpers of tests/e2e/test_registry.py: a real registry, test images, a proxy.

Registry, Layout, tar_layer, sha   compat/registry.py (the conformance harness
                                   uses them too), re-exported here
base_layer, top_layer              the test images' two layers
Proxy         a tiny HTTP proxy in front of a registry that counts blob GETs
              and can flip a byte of chosen blobs
"""

from __future__ import annotations

import http.client
import http.server
import threading
from collections import Counter
from pathlib import Path

from compat.registry import MTIME, Layout, Registry, bcrypt, sha, tar_layer

__all__ = ["MTIME", "Layout", "Registry", "bcrypt", "sha", "tar_layer"]

BUSYBOX = Path("/bin/busybox")


def base_layer(arch_marker: str = "amd64") -> bytes:
    return tar_layer(
        [
            ("bin", "dir", b""),
            ("bin/busybox", "exe", BUSYBOX.read_bytes()),
            ("bin/sh", "link", "busybox"),
            ("etc", "dir", b""),
            ("etc/motd", "file", "old motd\n"),
            ("etc/gone", "file", "deleted by the top layer\n"),
            ("opaque", "dir", b""),
            ("opaque/old1", "file", "hidden by an opaque dir\n"),
            ("opaque/old2", "file", "hidden too\n"),
            ("arch", "file", arch_marker + "\n"),
        ]
    )


def top_layer() -> bytes:
    return tar_layer(
        [
            ("etc", "dir", b""),
            ("etc/.wh.gone", "file", b""),
            ("etc/motd", "file", "new motd\n"),
            ("opaque", "dir", b""),
            ("opaque/.wh..wh..opq", "file", b""),
            ("opaque/new", "file", "the only file left here\n"),
        ]
    )


# -- the proxy ------------------------------------------------------------------
class Proxy:
    """Forwards GETs to ``upstream``; counts blob GETs; corrupts ``corrupt`` digests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.blob_gets: Counter[str] = Counter()
        self.corrupt: set[str] = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if "/blobs/" in self.path:
                    with proxy.lock:
                        proxy.blob_gets[self.path.rsplit("/", 1)[1]] += 1
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                digest = self.path.rsplit("/", 1)[1]
                if digest in proxy.corrupt and response.status == 200 and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

        self.server, self.host = serve(Handler)

    def close(self) -> None:
        stop(self.server)


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[http.server.HTTPServer, str]:
    """A threaded HTTP server on a free loopback port, serving in a daemon thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def stop(server: http.server.HTTPServer) -> None:
    server.shutdown()
    server.server_close()
