"""The cost of tracing on a launch: ``python -m bench.traces [N]`` (as root).

An in-process app (``create_app``) with the real runtime launches N
containers (``POST /containers``, ``true``, not waited for) three ways, in
turn, each with its own state dir: tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT),
on with the OTLP/HTTP exporter, batched, posting to a sink on 127.0.0.1 that
answers 200, and the same again.  Prints each mode's median and p90 in ms.
"""

from __future__ import annotations

import http.server
import os
import statistics
import sys
import tempfile
import threading
import time

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.tracing import Tracing


class _Sink(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:  # noqa: N802 (the http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _Sink.received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _launches(tracing: Tracing, n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(state_dir=os.path.join(tmp, "state")), tracing=tracing)
        times: list[float] = []
        ids: list[str] = []
        with TestClient(app) as client:
            for i in range(n + 5):
                began = time.perf_counter()
                response = client.post("/containers", json={"command": ["true"]})
                elapsed = time.perf_counter() - began
                assert response.status_code == 201, response.text
                if i >= 5:  # warm-up
                    times.append(elapsed * 1000)
                ids.append(response.json()["id"])
            # Exits recorded and acked: the launcher ends with the app.
            for container_id in ids:
                client.post(f"/containers/{container_id}/wait")
        return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    results: dict[str, list[float]] = {"off": [], "otlp": []}
    for _ in range(2):  # interleaved: drift on a shared machine hits both
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        results["off"] += _launches(Tracing.from_environment(), n)
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        results["otlp"] += _launches(Tracing.from_environment(), n)
    sink.shutdown()
    for mode, times in results.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{mode:5} n={len(times)} median {statistics.median(times):.2f} ms  p90 {p90:.2f} ms")
    print(f"sink received {_Sink.received} OTLP requests")


if __name__ == "__main__":
    main()
