"""Interactive containers end to end: the tutorial's demo typed into a real
terminal (a pty this test drives), exec, attach, and the CLI's exit codes.

Every wait below has a generous deadline and only bounds a hang; nothing
asserts how fast anything is.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Service
from tests.e2e.helpers import create, unique, wait, wait_for_output

MYDOCKER = str(Path(sys.executable).parent / "mydocker")
DEADLINE = 30.0


class Terminal:
    """A command on a fresh pty, driven from the master side like a person would."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80):
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.buffer = b""
        self.process = subprocess.Popen(
            argv,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
            # After setsid (start_new_session): the pty becomes the
            # controlling terminal, as a login shell's would.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = DEADLINE) -> re.Match[bytes]:
        """Read until ``pattern`` (a regex) matches the output since the last match."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.buffer)
            if found:
                self.buffer = self.buffer[found.end() :]
                return found
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{pattern!r} not seen; output so far: {self.buffer[-2000:]!r}"
            if self._readable(min(remaining, 0.5)):
                try:
                    self.buffer += os.read(self.master, 65536)
                except OSError:  # EIO: the command exited and closed the pty
                    time.sleep(0.05)

    def _readable(self, timeout: float) -> bool:
        import select

        return bool(select.select([self.master], [], [], timeout)[0])

    def wait(self, timeout: float = DEADLINE) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"still running; output: {self.buffer[-2000:]!r}"
            if self._readable(0.1):
                try:
                    self.buffer += os.read(self.master, 65536)
                except OSError:
                    time.sleep(0.05)
        return self.process.returncode

    def termios_flags(self) -> tuple[int, int]:
        """``(lflag, iflag)`` of the terminal as the command left it."""
        attrs = termios.tcgetattr(self.slave)
        return attrs[3], attrs[0]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def cli_env(service: Service) -> dict[str, str]:
    return {**os.environ, "MYDOCKER_HOST": service.url, "TERM": "xterm"}


@pytest.fixture
def terminal(cli_env: dict[str, str]) -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for term in made:
        term.close()


def mydocker(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MYDOCKER, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def by_name(client: httpx.Client, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        found = client.get("/containers", params={"name": name}).json()
        if found:
            result: dict[str, Any] = found[0]
            return result
        assert time.monotonic() < deadline, f"no container named {name}"
        time.sleep(0.05)


def ws_url(service: Service, path: str) -> str:
    return "ws" + service.url[len("http") :] + path


def read_until(ws: ClientConnection, text: bytes, timeout: float = DEADLINE) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if isinstance(message, bytes):
            seen += message
    return seen


# -- the tutorial's demo ---------------------------------------------------------
def test_the_tutorial_demo_in_a_real_terminal(
    client: httpx.Client, cli_env: dict[str, str], terminal: list[Terminal]
) -> None:
    host_name = socket.gethostname()
    name = unique("demo")
    # SYS_ADMIN: Docker's default capabilities (ours too) refuse sethostname.
    argv = [MYDOCKER, "run", "-it", "--cap-add", "SYS_ADMIN", "--name", name, "--", "/bin/sh"]
    term = Terminal(argv, cli_env)
    terminal.append(term)
    term.expect(r"# ")
    container = by_name(client, name)
    short_id = str(container["id"])[:12]
    assert container["tty"] is True

    term.send("hostname\r")
    term.expect(rf"\r\n{short_id}\r\n")
    term.send("hostname Linux; hostname\r")
    term.expect(r"\r\nLinux\r\n")
    # Only lo, the tutorial's point: `ip link` inside shows one interface.
    term.send("ip -o link | cut -d: -f2 | tr -d ' \\n'; echo :END\r")
    term.expect(r"\r\nlo:END\r\n")
    term.send("exit 3\r")
    assert term.wait() == 3
    assert socket.gethostname() == host_name
    # Raw mode was undone: echo and canonical input are back.
    lflag, iflag = term.termios_flags()
    assert lflag & termios.ECHO and lflag & termios.ICANON and iflag & termios.ICRNL
    assert wait(client, container["id"])["exit_code"] == 3


def test_the_tutorial_syntax_with_action_run(
    client: httpx.Client, cli_env: dict[str, str], terminal: list[Terminal]
) -> None:
    name = unique("tut")
    term = Terminal(
        [MYDOCKER, "--action", "run", "--name", name, "--", "/bin/sh"], cli_env, rows=33, cols=91
    )
    terminal.append(term)
    term.expect(r"# ")
    term.send("stty size; tty\r")  # a terminal of the caller's size, as the tutorial's
    term.expect(r"\r\n33 91\r\n/dev/pts/\d+\r\n")
    term.send("exit\r")
    assert term.wait() == 0


def test_resize_and_ctrl_c_reach_the_container(
    cli_env: dict[str, str], terminal: list[Terminal]
) -> None:
    term = Terminal([MYDOCKER, "run", "-it", "--rm", "--", "/bin/sh"], cli_env, rows=24, cols=80)
    terminal.append(term)
    term.expect(r"# ")
    term.send("stty size\r")
    term.expect(r"\r\n24 80\r\n")
    term.resize(40, 120)
    term.process.send_signal(signal.SIGWINCH)  # what the kernel does for a real resize
    deadline = time.monotonic() + DEADLINE
    while True:
        term.send("stty size\r")
        found = term.expect(r"\r\n(\d+ \d+)\r\n")
        if found.group(1) == b"40 120":
            break
        assert time.monotonic() < deadline, "the new size never reached the container"
        time.sleep(0.2)
    # Ctrl-C in raw mode is a byte for the container's pty, which turns it
    # into SIGINT for the foreground job: the sleep ends, the shell stays.
    term.send("sleep 600; echo slept\r")
    term.expect(r"sleep 600; echo slept\r\n")
    term.send("\x03")
    term.send("echo back-$((40+2))\r")
    term.expect(r"(\r\n|# )back-42\r\n")
    term.send("exit 0\r")
    assert term.wait() == 0


def test_detach_keys_leave_the_container_running_and_attach_comes_back(
    client: httpx.Client, cli_env: dict[str, str], terminal: list[Terminal]
) -> None:
    name = unique("det")
    term = Terminal([MYDOCKER, "run", "-it", "--name", name, "--", "/bin/sh"], cli_env)
    terminal.append(term)
    term.expect(r"# ")
    term.send("echo before-$((1+1))\r")
    term.expect(r"before-2")
    term.send("\x10\x11")  # Ctrl-P Ctrl-Q
    assert term.wait() == 0
    assert by_name(client, name)["status"] == "running"

    again = Terminal([MYDOCKER, "attach", name], cli_env)
    terminal.append(again)
    again.expect(r"before-2")  # replayed from the logs
    again.send("exit 6\r")
    assert again.wait() == 6


def test_sigterm_to_the_cli_restores_the_terminal(
    cli_env: dict[str, str], terminal: list[Terminal]
) -> None:
    term = Terminal([MYDOCKER, "run", "-it", "--rm", "--", "/bin/sh"], cli_env)
    terminal.append(term)
    term.expect(r"# ")
    lflag, _ = term.termios_flags()
    assert not lflag & termios.ECHO  # raw while attached
    term.process.send_signal(signal.SIGTERM)
    assert term.wait() == 128 + signal.SIGTERM
    lflag, _ = term.termios_flags()
    assert lflag & termios.ECHO and lflag & termios.ICANON


# -- exec ----------------------------------------------------------------------------
@pytest.fixture
def sleeper(client: httpx.Client) -> Iterator[dict[str, object]]:
    container = create(client, ["sleep", "600"], name=unique("sleeper"), hostname="sleeper")
    yield container
    client.delete(f"/containers/{container['id']}", params={"force": "true"})


def test_exec_sees_the_containers_hostname_and_pid_namespace(
    client: httpx.Client, sleeper: dict[str, object]
) -> None:
    script = (
        "hostname; readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"
    )
    response = client.post(
        f"/containers/{sleeper['id']}/exec",
        params={"wait": "true"},
        json={"command": ["sh", "-c", script]},
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["status"], record["exit_code"]) == ("exited", 0)
    out = client.get(f"/execs/{record['id']}/logs").text.splitlines()
    assert out[0] == "sleeper"
    assert out[1] == os.readlink(f"/proc/{sleeper['pid']}/ns/pid")
    assert out[1] != os.readlink("/proc/self/ns/pid")
    assert out[2].strip() == "sleep 600"  # PID 1 is the container's command
    assert 1 < int(out[3]) < 100  # a small pid: numbered inside the namespace


def test_exec_exit_codes_are_recorded_and_null_while_running(
    client: httpx.Client, sleeper: dict[str, object]
) -> None:
    done = client.post(
        f"/containers/{sleeper['id']}/exec",
        params={"wait": "true"},
        json={"command": ["sh", "-c", "exit 7"]},
    ).json()
    assert (done["exit_code"], done["signal"]) == (7, None)
    assert client.get(f"/execs/{done['id']}").json()["exit_code"] == 7

    running = client.post(
        f"/containers/{sleeper['id']}/exec", json={"command": ["sleep", "600"]}
    ).json()
    current = client.get(f"/execs/{running['id']}").json()
    assert (current["status"], current["exit_code"]) == ("running", None)
    timed = client.post(f"/execs/{running['id']}/wait", params={"timeout": 0.2}).json()
    assert timed["exit_code"] is None
    # When the container ends, the kernel kills its whole PID namespace.
    client.post(f"/containers/{sleeper['id']}/kill")
    ended = client.get(f"/execs/{running['id']}", params={"wait": "true"}).json()
    assert (ended["status"], ended["exit_code"], ended["signal"]) == ("exited", 137, "SIGKILL")
    listed = client.get(f"/containers/{sleeper['id']}/execs").json()
    assert [e["id"] for e in listed] == [done["id"], running["id"]]
    refused = client.post(f"/containers/{sleeper['id']}/exec", json={"command": ["true"]})
    assert refused.status_code == 409, refused.text


def test_exec_failures_and_users(client: httpx.Client, sleeper: dict[str, object]) -> None:
    url = f"/containers/{sleeper['id']}/exec"
    missing = client.post(url, json={"command": ["no-such-command"]}).json()
    assert (missing["status"], missing["exit_code"]) == ("exited", 127)
    assert "not found" in missing["error"]
    nobody = client.post(
        url, params={"wait": "true"}, json={"command": ["id", "-u"], "user": "nobody"}
    )
    assert client.get(f"/execs/{nobody.json()['id']}/logs").text.strip() == "65534"
    unknown = client.post(url, json={"command": ["id"], "user": "no-such-user"}).json()
    assert unknown["exit_code"] == 125 and "no-such-user" in unknown["error"]
    assert client.post("/containers/nope/exec", json={"command": ["true"]}).status_code == 404
    assert client.get("/execs/" + "0" * 64).status_code == 404
    assert client.post(url, json={"command": []}).status_code == 422


def test_exec_it_in_a_terminal(
    client: httpx.Client,
    cli_env: dict[str, str],
    terminal: list[Terminal],
    sleeper: dict[str, object],
) -> None:
    term = Terminal([MYDOCKER, "exec", "-it", str(sleeper["id"])[:12], "--", "/bin/sh"], cli_env)
    terminal.append(term)
    term.expect(r"# ")
    term.send("hostname; tty\r")
    term.expect(r"\r\nsleeper\r\n/dev/pts/\d+\r\n")
    term.send("exit 2\r")
    assert term.wait() == 2


# -- attach over the WebSocket ----------------------------------------------------------
def test_attach_replays_on_reconnect_and_every_client_sees_output(
    client: httpx.Client, service: Service
) -> None:
    shell = create(client, ["/bin/sh"], tty=True)
    url = ws_url(service, f"/containers/{shell['id']}/attach")
    try:
        with connect(url) as first:
            first.send(b"echo one-$((0+1))\n")
            read_until(first, b"one-1")
        # Detached (the socket is closed) but the shell lives on.
        assert client.get(f"/containers/{shell['id']}").json()["status"] == "running"
        with connect(url) as a, connect(url) as b:
            assert b"one-1" in read_until(a, b"one-1")  # replayed from the logs
            assert b"one-1" in read_until(b, b"one-1")
            a.send(b"echo two-$((1+1))\n")
            read_until(a, b"two-2")
            read_until(b, b"two-2")
            b.send(json.dumps({"type": "resize", "rows": 50, "cols": 132}))
            b.send(b"stty size\n")
            read_until(a, b"50 132")
            a.send(b"exit 4\n")
            for ws in (a, b):
                end = [m for m in ws if isinstance(m, str)]
                assert json.loads(end[-1]) == {
                    "type": "exit",
                    "exit_code": 4,
                    "signal": None,
                    "error": None,
                }
    finally:
        client.delete(f"/containers/{shell['id']}", params={"force": "true"})


def test_attach_stdin_pipe_eof_and_refusals(client: httpx.Client, service: Service) -> None:
    cat = create(client, ["sh", "-c", "cat; echo eof-seen"], stdin=True)
    with connect(ws_url(service, f"/containers/{cat['id']}/attach")) as ws:
        ws.send(b"through the pipe\n")
        read_until(ws, b"through the pipe")
        ws.send(json.dumps({"type": "resize", "rows": 5, "cols": 5}))  # no tty: refused
        error = ws.recv(timeout=DEADLINE)
        assert isinstance(error, str) and json.loads(error)["type"] == "error"
        ws.send(json.dumps({"type": "eof"}))
        read_until(ws, b"eof-seen")
    assert wait(client, cat["id"])["exit_code"] == 0

    quiet = create(client, ["sh", "-c", "echo early; sleep 600"])
    wait_for_output(client, quiet["id"], "early")
    try:
        with connect(ws_url(service, f"/containers/{quiet['id']}/attach")) as ws:
            read_until(ws, b"early")  # written before anybody attached
            ws.send(b"ignored\n")
            error = ws.recv(timeout=DEADLINE)
            assert isinstance(error, str) and "stdin" in json.loads(error)["message"]
    finally:
        client.delete(f"/containers/{quiet['id']}", params={"force": "true"})

    with connect(ws_url(service, "/containers/no-such-thing/attach")) as ws:
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=DEADLINE)
    assert "4404" in str(closed.value)


# -- the CLI's exit codes --------------------------------------------------------------
def test_cli_exit_codes_follow_docker(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert mydocker(cli_env, "run", "--rm", "--", "sh", "-c", "exit 3").returncode == 3
    assert mydocker(cli_env, "run", "--rm", "--", "false").returncode == 1
    nested = mydocker(cli_env, "run", "--rm", "--", "sh", "-c", 'sh -c "kill -9 \\$\\$"')
    assert nested.returncode == 137  # the shell's 128+9, passed through
    missing = mydocker(cli_env, "run", "--rm", "--", "no-such-command")
    assert missing.returncode == 127 and "not found" in missing.stderr
    assert mydocker(cli_env, "run", "--rm", "--", "/etc/passwd").returncode == 126
    refused = mydocker(cli_env, "run", "--hostname", "not_valid!", "--", "true")
    assert refused.returncode == 125 and "hostname" in refused.stderr
    assert mydocker(cli_env, "run", "--no-such-flag", "--", "true").returncode == 125
    unreachable = mydocker({**cli_env, "MYDOCKER_HOST": "http://127.0.0.1:9"}, "run", "--", "true")
    assert unreachable.returncode == 125 and "cannot reach" in unreachable.stderr
    piped = mydocker(
        cli_env, "run", "-i", "--rm", "--", "sh", "-c", "tr a-z A-Z; exit 5", stdin="shout\n"
    )
    assert (piped.returncode, piped.stdout) == (5, "SHOUT\n")
    both = mydocker(cli_env, "run", "--rm", "--", "sh", "-c", "echo out; echo err >&2")
    assert (both.stdout, both.stderr) == ("out\n", "err\n")  # kept apart, as docker run


def test_cli_commands(client: httpx.Client, cli_env: dict[str, str]) -> None:
    name = unique("cli")
    started = mydocker(
        cli_env,
        "run",
        "-d",
        "--name",
        name,
        "-e",
        "GREETING=hi",
        "--",
        "sh",
        "-c",
        "trap 'exit 9' TERM; echo $GREETING; while :; do sleep 0.1; done",
    )
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    wait_for_output(client, container_id, "hi")
    table = mydocker(cli_env, "ps").stdout
    assert table.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert container_id[:12] in table and name in table
    listed = json.loads(mydocker(cli_env, "ps", "--json").stdout)
    assert container_id in [c["id"] for c in listed]
    assert mydocker(cli_env, "logs", name).stdout == "hi\n"
    assert json.loads(mydocker(cli_env, "inspect", name).stdout)["id"] == container_id
    execd = mydocker(cli_env, "exec", name, "--", "sh", "-c", "echo $GREETING-exec; exit 4")
    assert (execd.returncode, execd.stdout) == (4, "hi-exec\n")
    assert mydocker(cli_env, "stop", "-t", "20", name).returncode == 0
    assert mydocker(cli_env, "wait", name).stdout.strip() == "9"
    assert name not in mydocker(cli_env, "ps").stdout
    assert "Exited (9)" in mydocker(cli_env, "ps", "-a").stdout
    assert mydocker(cli_env, "exec", name, "--", "true").returncode == 125  # not running: 409
    assert mydocker(cli_env, "rm", name).returncode == 0
    assert mydocker(cli_env, "rm", name).returncode == 1
    assert mydocker(cli_env, "logs", name).returncode == 1


def test_run_exits_128_plus_the_signal_that_killed_the_container(
    client: httpx.Client, cli_env: dict[str, str]
) -> None:
    name = unique("sig")
    process = subprocess.Popen(
        [MYDOCKER, "run", "--name", name, "--", "sh", "-c", "echo ready; sleep 600"],
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        assert client.post(f"/containers/{name}/kill").status_code == 200
        assert process.wait(DEADLINE) == 128 + signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        client.delete(f"/containers/{name}", params={"force": "true"})


def test_ctrl_c_without_tty_detaches(client: httpx.Client, cli_env: dict[str, str]) -> None:
    name = unique("int")
    process = subprocess.Popen(
        [MYDOCKER, "run", "--name", name, "--", "sh", "-c", "echo ready; sleep 600"],
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE) == 0
        assert process.stderr is not None and b"detached" in process.stderr.read()
        assert by_name(client, name)["status"] == "running"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        client.delete(f"/containers/{name}", params={"force": "true"})


def test_cli_import_images_and_run_in_the_image(
    client: httpx.Client, cli_env: dict[str, str], tmp_path: Path
) -> None:
    import tarfile

    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("from the imported image\n")
    archive = tmp_path / "root.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    name = unique("img")
    try:
        imported = mydocker(cli_env, "import", name, str(archive))
        assert (imported.returncode, imported.stdout.strip()) == (0, name), imported.stderr
        assert name in mydocker(cli_env, "images").stdout
        assert name in [i["name"] for i in json.loads(mydocker(cli_env, "images", "--json").stdout)]
        again = mydocker(cli_env, "import", name, str(archive))
        assert again.returncode == 1 and "exists" in again.stderr
        ran = mydocker(
            cli_env, "run", "--rm", "--image", name, "--", "/bin/sh", "-c", "cat /etc/motd"
        )
        assert (ran.returncode, ran.stdout) == (0, "from the imported image\n"), ran.stderr
    finally:
        client.delete(f"/images/{name}")


def test_run_detached_with_rm_is_removed_by_the_service(
    client: httpx.Client, cli_env: dict[str, str]
) -> None:
    started = mydocker(cli_env, "run", "-d", "--rm", "--", "sh", "-c", "exit 0")
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    deadline = time.monotonic() + DEADLINE
    while client.get(f"/containers/{container_id}").status_code != 404:
        assert time.monotonic() < deadline, "never removed"
        time.sleep(0.05)


def test_cli_limits_reach_the_service(client: httpx.Client, cli_env: dict[str, str]) -> None:
    started = mydocker(
        cli_env,
        "run",
        "-d",
        "-m",
        "64m",
        "--pids-limit",
        "32",
        "--cpus",
        "0.5",
        "--",
        "sleep",
        "600",
    )
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    try:
        limits = json.loads(mydocker(cli_env, "inspect", container_id).stdout)["limits"]
        assert (limits["memory_bytes"], limits["pids"], limits["cpus"]) == (64 << 20, 32, 0.5)
    finally:
        client.delete(f"/containers/{container_id}", params={"force": "true"})
