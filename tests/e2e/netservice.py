"""A real service inside a network namespace the test made.

    Namespace           ``unshare --net sleep infinity``: "the host" of the
                        test (lo up), which the service, its launcher and its
                        bridges live in; ``run(code)`` runs Python there
                        (``nsenter --net``) and returns its stdout
    NetService          ``python -m app --uds`` inside that namespace; the
                        test talks to it over the unix socket, which the
                        filesystem carries across namespaces
    client              an httpx client over that socket

Network safety: nothing here runs in the host's namespace; the service's
bridges, nft table, ip_forward and port 53 are all the test namespace's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.service import ROOT, find_launcher, kill_leftovers


class Namespace:
    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        path = f"/proc/{self.holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        # unshare(1) exec's sleep once the namespace exists: wait for a new inode.
        own = os.stat("/proc/self/ns/net").st_ino
        while os.stat(path).st_ino == own:
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.01)
        self.path = path
        subprocess.run(self.enter(["ip", "link", "set", "lo", "up"]), check=True)

    def enter(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.path}", *argv]

    def run(self, code: str, timeout: float = 30) -> str:
        """Python ``code`` in the namespace (as "the host"); its stdout."""
        done = subprocess.run(
            self.enter([sys.executable, "-c", code]),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def ip(self, *args: str) -> str:
        done = subprocess.run(self.enter(["ip", *args]), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def nft(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.enter(["nft", *args]), capture_output=True, text=True)

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


@dataclass
class NetService:
    netns: Namespace
    state_dir: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uds(self) -> Path:
        return self.state_dir.parent / "api.sock"

    def start(self, timeout: float = 30.0) -> None:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir.parent / "service.log", "ab") as log:
            argv = [sys.executable, "-m", "app", "--uds", str(self.uds)]
            argv += ["--state-dir", str(self.state_dir), *self.extra_args]
            self.process = subprocess.Popen(
                self.netns.enter(argv), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            if self._accepts():
                with self.client(timeout=5) as c:
                    if c.get("/health").status_code == 200:
                        return
            time.sleep(0.05)
        raise RuntimeError("the service did not come up")

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.uds))
            except OSError:
                return False
        return True

    def client(self, timeout: float = 60) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=str(self.uds))
        return httpx.Client(transport=transport, base_url="http://mydocker", timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """The API process only; the launcher and its containers stay."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill_all(self) -> None:
        """kill -9 of the API and of the launcher (a crash of both)."""
        self.stop(signal.SIGKILL)
        self._kill_launcher()

    def _kill_launcher(self) -> None:
        pid = find_launcher(self.state_dir)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while find_launcher(self.state_dir) == pid and time.monotonic() < deadline:
                time.sleep(0.05)

    def close(self) -> None:
        """The API, the launcher, and what they leave: containers, the
        warm pool's cgroups (bench/service.py's ``kill_leftovers``)."""
        self.stop()
        self._kill_launcher()
        kill_leftovers(self.state_dir)
