"""How the CLI reaches the service: httpx for requests, websockets for attach.

``--host`` (or ``MYDOCKER_HOST``) is ``http://HOST:PORT`` (the default is
``http://127.0.0.1:8000``), ``tcp://HOST:PORT``, ``HOST:PORT``, or a unix
socket: ``unix:///path/to.sock`` or just ``/path/to.sock`` (the service's
``--uds``).  ``MYDOCKER_TOKEN`` is sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect, unix_connect

DEFAULT_HOST = "http://127.0.0.1:8000"
#: The host name used in URLs when the service is reached over a unix socket.
UDS_AUTHORITY = "mydocker"


class UsageError(ValueError):
    """A command line that cannot be sent: the service was never asked.  A
    ValueError, so that argparse reports it from a ``type=`` function too."""


class ServiceError(Exception):
    """The service answered with an error status; ``str()`` is its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class Unreachable(Exception):
    """No service answers at the host."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # http://host:port, or http://mydocker with a unix socket
    uds: str | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[len("http") :]


def parse_host(host: str) -> Endpoint:
    if host.startswith("unix://"):
        return Endpoint(f"http://{UDS_AUTHORITY}", host[len("unix://") :])
    if host.startswith("/"):
        return Endpoint(f"http://{UDS_AUTHORITY}", host)
    if host.startswith("tcp://"):
        host = "http://" + host[len("tcp://") :]
    if not host.startswith(("http://", "https://")):
        host = "http://" + host
    parts = urlsplit(host)
    if not parts.hostname:
        raise ValueError(f"not a host: {host!r}")
    return Endpoint(f"{parts.scheme}://{parts.netloc}")


def error_detail(response: httpx.Response) -> str:
    """FastAPI's ``{"detail": ...}`` as one line: a sentence, or 422's field list."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text.strip() or response.reason_phrase
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class Api:
    def __init__(self, host: str, token: str | None = None) -> None:
        self.endpoint = parse_host(host)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(uds=self.endpoint.uds) if self.endpoint.uds else None
        # No read timeout: wait and logs -f may take as long as the container.
        self.http = httpx.Client(
            base_url=self.endpoint.base_url,
            headers=self.headers,
            transport=transport,
            timeout=httpx.Timeout(30.0, read=None),
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise Unreachable(f"cannot reach the service at {self.where()}: {err}") from err
        if response.status_code >= 400:
            raise ServiceError(response.status_code, error_detail(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServiceError(response.status_code, error_detail(response))
                yield response
        except httpx.TransportError as err:
            raise Unreachable(f"cannot reach the service at {self.where()}: {err}") from err

    def where(self) -> str:
        return self.endpoint.uds or self.endpoint.base_url

    @contextmanager
    def websocket(self, path: str, **params: Any) -> Iterator[ClientConnection]:
        query = urlencode(
            {k: json.dumps(v) if isinstance(v, bool) else v for k, v in params.items()}
        )
        uri = f"{self.endpoint.ws_url}{path}" + (f"?{query}" if query else "")
        options: dict[str, Any] = {
            "additional_headers": self.headers,
            "max_size": None,
            "open_timeout": 30,
            # Our own attach protocol has its own end (the exit message); a
            # ping timeout would cut a quiet shell for nothing.
            "ping_interval": None,
        }
        try:
            if self.endpoint.uds:
                ws = unix_connect(self.endpoint.uds, uri, **options)
            else:
                ws = connect(uri, **options)
        except InvalidStatus as err:
            body = err.response.body.decode(errors="replace") if err.response.body else ""
            raise ServiceError(err.response.status_code, body.strip() or "refused") from err
        except (OSError, TimeoutError) as err:
            raise Unreachable(f"cannot reach the service at {self.where()}: {err}") from err
        with ws:
            yield ws


def token_from_env() -> str | None:
    return os.environ.get("MYDOCKER_TOKEN") or None
