"""The test images of tests/e2e/test_pull*.py, in a real registry.

``start_app_registry`` starts Debian's ``docker-registry`` with ``e2e/app:app``
(two layers, the config APP_CONFIG), ``e2e/base:base`` (its bottom layer
alone), ``e2e/three:three`` (three layers) and ``e2e/umoci:u`` (built by
umoci from a busybox rootfs).  ``TokenRegistry`` puts a registry behind the
bearer-token flow, with a token endpoint of its own.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.oci_registry import (
    BUSYBOX,
    Layout,
    Registry,
    base_layer,
    serve,
    stop,
    tar_layer,
    top_layer,
)

APP_CONFIG: dict[str, object] = {
    "Entrypoint": ["/bin/sh", "-c"],
    "Cmd": ['echo "$GREETING from $(pwd) as $(busybox id -u):$(busybox id -g)"'],
    "Env": ["PATH=/bin", "GREETING=hello"],
    "WorkingDir": "/work/dir",
    "User": "1000:1000",
    "ExposedPorts": {"8080/tcp": {}},
    "Volumes": {"/data": {}},
    "Labels": {"test": "registry", "tier": "app"},
    "StopSignal": "SIGQUIT",
}


def start_app_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    layout = Layout(tmp_path_factory.mktemp("oci") / "layout")
    layout.tag(layout.image([base_layer(), top_layer()], config_fields=APP_CONFIG), "app")
    layout.tag(layout.image([base_layer()]), "base")
    extra = tar_layer([("extra", "file", "a third layer\n")])
    layout.tag(layout.image([base_layer(), top_layer(), extra]), "three")
    umoci_layout = umoci_image(tmp_path_factory.mktemp("umoci"))
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        for tag in ("app", "base", "three"):
            reg.push(layout.path, tag, f"e2e/{tag}")
        reg.push(umoci_layout, "u", "e2e/umoci")
    except BaseException:
        reg.stop()
        raise
    return reg


def umoci_image(tmp: Path) -> Path:
    """An image built by umoci from a busybox rootfs, in two layers (the second
    deletes one file and replaces another), with an Entrypoint/Cmd/Env/WorkingDir/User."""
    layout, bundle = tmp / "layout", tmp / "bundle"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=60)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:u")
    umoci("unpack", "--image", f"{layout}:u", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir()
    (rootfs / "etc").mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "etc" / "motd").write_text("one\n")
    (rootfs / "etc" / "gone").write_text("deleted by the second layer\n")
    umoci("repack", "--image", f"{layout}:u", str(bundle))
    shutil.rmtree(bundle)
    umoci("unpack", "--image", f"{layout}:u", str(bundle))
    (rootfs / "etc" / "gone").unlink()
    (rootfs / "etc" / "motd").write_text("two\n")
    umoci("repack", "--image", f"{layout}:u", str(bundle))
    umoci(
        "config",
        "--image",
        f"{layout}:u",
        "--config.entrypoint",
        "/bin/sh",
        "--config.entrypoint",
        "-c",
        "--config.cmd",
        "cat /etc/motd; ls /etc; pwd; busybox id -u",
        "--config.env",
        "PATH=/bin",
        "--config.workingdir",
        "/made/here",
        "--config.user",
        "1000:1000",
    )
    return layout


class TokenRegistry:
    """A registry behind the bearer flow: a ``401`` with ``WWW-Authenticate:
    Bearer realm=…/token`` until a request carries the token that ``/token``
    gives for ``user``'s basic credentials; then the request goes to ``upstream``."""

    TOKEN = "e2e-bearer-token"

    def __init__(self, upstream: str, user: str, password: str) -> None:
        self.upstream = upstream
        self.token_requests: list[str] = []
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.startswith("/token"):
                    outer.token_requests.append(self.path)
                    if self.headers.get("Authorization") != expected:
                        self.reply(401, b'{"errors": []}', {"Content-Type": "application/json"})
                        return
                    body = json.dumps({"token": outer.TOKEN}).encode()
                    self.reply(200, body, {"Content-Type": "application/json"})
                    return
                if self.headers.get("Authorization") != f"Bearer {outer.TOKEN}":
                    challenge = f'Bearer realm="http://{outer.host}/token",service="e2e"'
                    self.reply(401, b"{}", {"WWW-Authenticate": challenge})
                    return
                conn = http.client.HTTPConnection(outer.upstream, timeout=30)
                accept = self.headers.get("Accept", "*/*")
                conn.request("GET", self.path, headers={"Accept": accept})
                response = conn.getresponse()
                body = response.read()
                hop = ("content-length", "connection", "transfer-encoding")
                headers = {k: v for k, v in response.getheaders() if k.lower() not in hop}
                self.reply(response.status, body, headers)
                conn.close()

        self.server, self.host = serve(Handler)

    def close(self) -> None:
        stop(self.server)
