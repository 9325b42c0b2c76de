"""The real ``docker`` CLI (28.x, API 1.50) against mydocker's Docker API.

Nobody here wrote this client, so these tests hold us to Docker's protocol:
version negotiation, the create/attach/wait/start dance of ``docker run``
(attach is a real ``101`` upgrade), exit codes, and errors as the CLI prints them.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.timeutil import parse_ns, rfc3339_nano
from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE, docker_binary, docker_env, run_docker
from tests.e2e.helpers import unique

Docker = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def docker(service: Service, tmp_path: Path) -> Docker:
    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_docker(service, tmp_path, *args, **kwargs)  # type: ignore[arg-type]

    return call


def test_version_negotiates_our_api_version(docker: Docker) -> None:
    result = docker("version")
    assert result.returncode == 0, result.stderr
    assert "Server: mydocker" in result.stdout
    server = result.stdout.split("Server:")[1]
    assert re.search(r"API version:\s+1\.47 \(minimum version 1\.24\)", server)
    # A newer client talks our version (CLI 28.x: "1.47 (downgraded from 1.50)").
    assert re.search(r"API version:\s+1\.(4[1-7])\b", result.stdout.split("Server:")[0])


def test_run_rm_prints_and_removes(docker: Docker) -> None:
    name = unique("rm")
    result = docker("run", "--rm", "--name", name, IMAGE, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    listed = docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}")
    assert listed.stdout == ""


def test_run_exit_status_is_the_cli_exit_status(docker: Docker) -> None:
    result = docker("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_detached_container_life_cycle(docker: Docker) -> None:
    name = unique("life")
    started = docker("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo ready; exec sleep 300")
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    assert len(container_id) == 64

    listed = docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.ID}} {{.Status}}")
    assert listed.stdout.startswith(container_id[:12] + " Up"), listed.stdout

    logs = docker("logs", name)
    assert (logs.returncode, logs.stdout) == (0, "ready\n"), logs.stderr
    # --since before its start keeps everything.
    since = docker("logs", "--since", "1h", name)
    assert (since.returncode, since.stdout) == (0, "ready\n"), since.stderr

    inspected = json.loads(docker("inspect", name).stdout)[0]
    assert inspected["Id"] == container_id
    assert inspected["State"]["Running"] is True
    assert inspected["Config"]["Tty"] is False
    assert inspected["HostConfig"]["LogConfig"]["Type"] == "json-file"

    stopped = docker("stop", "-t", "1", name)
    assert (stopped.returncode, stopped.stdout) == (0, name + "\n"), stopped.stderr
    # sleep, PID 1 without a SIGTERM handler, dies of the SIGKILL: 128 + 9.
    waited = docker("wait", name)
    assert (waited.returncode, waited.stdout) == (0, "137\n"), waited.stderr
    state = json.loads(docker("inspect", name).stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)

    removed = docker("rm", "-f", name)
    assert removed.returncode == 0, removed.stderr
    gone = docker("inspect", name)
    assert gone.returncode != 0
    assert f"No such object: {name}" in gone.stderr


def test_rm_force_kills_a_running_container(docker: Docker) -> None:
    name = unique("force")
    assert docker("run", "-d", "--name", name, IMAGE, "sleep", "300").returncode == 0
    refused = docker("rm", name)
    assert refused.returncode != 0 and "running" in refused.stderr
    assert docker("rm", "-f", name).returncode == 0
    assert docker("ps", "-a", "-q", "--filter", f"name={name}").stdout == ""


def test_the_same_name_twice_fails_clearly(docker: Docker) -> None:
    name = unique("twice")
    assert docker("run", "--name", name, IMAGE, "true").returncode == 0
    second = docker("run", "--name", name, IMAGE, "true")
    assert second.returncode == 125
    assert f"'{name}' is already in use" in second.stderr
    assert docker("rm", name).returncode == 0


def test_an_unknown_image_fails_clearly(docker: Docker) -> None:
    result = docker("run", "--rm", "no-such-image", "true")
    assert result.returncode == 125
    assert "Unable to find image 'no-such-image:latest' locally" in result.stderr
    # The CLI pulls it: no internet here, so the registry is named as unreachable.
    assert "registry registry-1.docker.io does not answer" in result.stderr


def test_an_unsupported_option_is_refused_not_ignored(docker: Docker) -> None:
    result = docker("run", "--rm", "--privileged", IMAGE, "true")
    assert result.returncode == 125
    assert "unsupported option(s): HostConfig.Privileged" in result.stderr


def test_a_missing_command_exits_127(docker: Docker) -> None:
    result = docker("run", "--rm", IMAGE, "no-such-command")
    assert result.returncode == 127
    assert "no-such-command" in result.stderr


def test_run_i_pipes_stdin_to_the_container(docker: Docker) -> None:
    result = docker("run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done", input=b"a\nb\n")
    assert (result.returncode, result.stdout) == (0, "a\nb\ndone\n"), result.stderr


def test_run_it_in_a_terminal(service: Service, tmp_path: Path) -> None:
    """`docker run -it IMAGE sh` in a pseudo-terminal: type, see, `exit 2`."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        [docker_binary(), "run", "--rm", "-it", IMAGE, "sh"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=docker_env(service, tmp_path),
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()

    def read_until(token: bytes) -> None:
        deadline = time.monotonic() + 30
        while token not in seen:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"{token!r} never came; the terminal showed {bytes(seen)!r}"
            try:
                seen.extend(os.read(master, 4096))
            except OSError:  # EIO: the CLI is gone
                break

    try:
        read_until(b"# ")
        # The quotes keep the echo of what we type from matching the output.
        os.write(master, b"echo hel''lo; [ -t 0 ] && echo is-a-''terminal\n")
        read_until(b"hello\r\n")
        read_until(b"is-a-terminal")  # isatty(0): the container has a terminal
        os.write(master, b"exit 2\n")
        assert process.wait(30) == 2
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_resource_limits_map_onto_the_native_ones(docker: Docker) -> None:
    result = docker("run", "--rm", "--ulimit", "nofile=64:64", IMAGE, "sh", "-c", "ulimit -n")
    assert (result.returncode, result.stdout) == (0, "64\n"), result.stderr
    name = unique("oom")
    hog = docker(
        "run", "--name", name, "-m", "16m", IMAGE, "sh", "-c", 'x=a; while :; do x="$x$x"; done'
    )
    assert hog.returncode == 137, hog.stderr
    inspected = json.loads(docker("inspect", name).stdout)[0]
    assert inspected["State"]["OOMKilled"] is True
    assert inspected["HostConfig"]["Memory"] == 16 * 1024 * 1024
    assert docker("rm", name).returncode == 0


def test_exec_in_a_running_container(docker: Docker) -> None:
    name = unique("exec")
    assert docker("run", "-d", "--name", name, IMAGE, "sleep", "300").returncode == 0
    try:
        result = docker("exec", name, "sh", "-c", "echo out; echo err >&2; exit 7")
        assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
        piped = docker("exec", "-i", name, "cat", input=b"to exec\n")
        assert (piped.returncode, piped.stdout) == (0, "to exec\n"), piped.stderr
        missing = docker("exec", name, "no-such-command")
        # Docker's exec that cannot start ends with 126 (moby daemon/exec.go sets
        # it when the runtime's exec fails), not 127 as `docker run` would.
        assert missing.returncode == 126
    finally:
        docker("rm", "-f", name)


def test_import_run_and_remove_an_image(docker: Docker, tmp_path: Path) -> None:
    archive = tmp_path / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        data = b"imported\n"
        info = tarfile.TarInfo("hello")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    name = unique("img")
    imported = docker("import", str(archive), name)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("sha256:")
    assert name in docker("images", "--format", "{{.Repository}}").stdout.split()
    ran = docker("run", "--rm", name, "cat", "/hello")
    assert (ran.returncode, ran.stdout) == (0, "imported\n"), ran.stderr
    removed = docker("rmi", name)
    assert removed.returncode == 0, removed.stderr
    assert f"Untagged: {name}:latest" in removed.stdout
    builtin = docker("rmi", IMAGE)
    assert builtin.returncode != 0 and "built-in" in builtin.stderr


def test_logs_timestamps_since_and_until(docker: Docker) -> None:
    name = unique("times")
    started = docker("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo a; sleep 1.2; echo b")
    assert started.returncode == 0, started.stderr
    try:
        # Followed from the start (dated as the lines come), until the exit.
        dated = docker("logs", "-f", "-t", name)
        assert dated.returncode == 0, dated.stderr
        assert docker("wait", name).stdout.strip() == "0"
        assert docker("logs", "-t", name).stdout == dated.stdout  # the same times
        lines = [line.split(" ", 1) for line in dated.stdout.splitlines()]
        assert [text for _, text in lines] == ["a", "b"]
        (a, _), (b, _) = lines
        a_ns, b_ns = parse_ns(a), parse_ns(b)
        assert 0.9e9 < b_ns - a_ns < 10e9
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        # Docker's StartedAt/FinishedAt carry microseconds here: 1 ms of slack.
        assert parse_ns(state["StartedAt"]) - 10**6 <= a_ns
        assert b_ns <= parse_ns(state["FinishedAt"]) + 10**6
        middle = rfc3339_nano((a_ns + b_ns) // 2)
        assert docker("logs", "--since", middle, name).stdout == "b\n"
        assert docker("logs", "--until", middle, name).stdout == "a\n"
        last = docker("logs", "-t", "--tail", "1", name).stdout
        assert last == f"{b} b\n"
    finally:
        docker("rm", "-f", name)
