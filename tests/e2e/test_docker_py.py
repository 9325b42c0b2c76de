"""docker-py (the Docker SDK for Python) against mydocker's Docker API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.errors import ContainerError, NotFound
from websockets.sync.client import connect

from runtime.timeutil import parse_ns
from tests.e2e.conftest import Service
from tests.e2e.docker_helpers import IMAGE
from tests.e2e.helpers import unique


@pytest.fixture
def sdk(service: Service) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{service.port}", timeout=60)
    yield client
    client.close()


def test_run_returns_the_output(sdk: docker.DockerClient) -> None:
    assert sdk.containers.run(IMAGE, "echo hi", remove=True) == b"hi\n"


def test_detached_container_through_the_sdk(sdk: docker.DockerClient) -> None:
    name = unique("sdk")
    container = sdk.containers.run(
        IMAGE, ["sh", "-c", "echo ready; exec sleep 300"], name=name, detach=True
    )
    assert container.name == name
    listed = {c.name: c for c in sdk.containers.list(all=True)}
    assert listed[name].id == container.id
    fetched = sdk.containers.get(name)
    assert fetched.status == "running"
    deadline = time.monotonic() + 30
    while fetched.logs() != b"ready\n":
        assert time.monotonic() < deadline, fetched.logs()
        time.sleep(0.02)
    fetched.kill()
    assert fetched.wait() == {"StatusCode": 137}
    fetched.reload()
    assert fetched.status == "exited"
    fetched.remove(force=True)
    with pytest.raises(NotFound):
        sdk.containers.get(name)


def test_remove_force_of_a_running_container(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    container.remove(force=True)
    with pytest.raises(NotFound):
        sdk.containers.get(container.id)


def test_a_failing_command_raises_container_error_with_stderr(
    sdk: docker.DockerClient,
) -> None:
    with pytest.raises(ContainerError) as caught:
        sdk.containers.run(IMAGE, ["sh", "-c", "echo out; echo oops >&2; exit 4"], remove=True)
    assert caught.value.exit_status == 4
    assert caught.value.stderr == b"oops\n"


def test_labels_and_list_filters(sdk: docker.DockerClient) -> None:
    tag = unique("label")
    container = sdk.containers.run(IMAGE, "true", labels={"suite": tag}, detach=True)
    container.wait()
    found = sdk.containers.list(all=True, filters={"label": f"suite={tag}"})
    assert [c.id for c in found] == [container.id]
    assert found[0].labels == {"suite": tag}
    container.remove()


def test_exec_run(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    try:
        assert container.exec_run("sh -c 'echo hi; exit 3'") == (3, b"hi\n")
        code, (out, err) = container.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, out, err) == (0, b"o\n", b"e\n")
    finally:
        container.remove(force=True)


def test_stats_of_a_running_container(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True, mem_limit="64m")
    try:
        stats = container.stats(stream=False)
        assert stats["memory_stats"]["limit"] == 64 << 20
        assert stats["memory_stats"]["usage"] > 0
        assert stats["pids_stats"]["current"] == 1
        # Two samples a second apart, as Docker does without one-shot.
        assert stats["precpu_stats"]["system_cpu_usage"] > 0
    finally:
        container.remove(force=True)


def test_logs_with_timestamps_and_since(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, ["sh", "-c", "echo a; sleep 1.2; echo b"], detach=True)
    try:
        assert container.wait()["StatusCode"] == 0
        lines = [line.split(b" ", 1) for line in container.logs(timestamps=True).splitlines()]
        assert [text for _, text in lines] == [b"a", b"b"]
        a_ns, b_ns = (parse_ns(stamp.decode()) for stamp, _ in lines)
        assert 0.9e9 < b_ns - a_ns < 10e9
        middle = (a_ns + b_ns) / 2 / 1e9  # docker-py sends a float as it is
        assert container.logs(since=middle) == b"b\n"
        assert container.logs(until=middle) == b"a\n"
        # An int since (docker-py truncates datetimes to whole seconds too).
        assert container.logs(since=int(a_ns // 10**9)) == b"a\nb\n"
    finally:
        container.remove(force=True)


def test_run_streams_the_output_a_line_at_a_time(sdk: docker.DockerClient) -> None:
    out = sdk.containers.run(IMAGE, ["sh", "-c", "echo hello && echo world"], stream=True)
    assert list(out) == [b"hello\n", b"world\n"]


def test_kill_answers_once_the_container_has_exited(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    try:
        container.kill()
        container.reload()  # at once: the kill's answer waited for the exit
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 137
    finally:
        container.remove(force=True)


def test_leave_swarm_outside_a_swarm(sdk: docker.DockerClient) -> None:
    assert sdk.api.leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as caught:
        sdk.swarm.reload()
    assert caught.value.status_code == 503


def test_exec_start_frames_unless_the_start_says_tty(sdk: docker.DockerClient) -> None:
    """The start's Tty decides the framing, as in Docker: docker-py's exec_start
    of an exec created with a TTY parses frames unless it is told tty=True."""
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    try:
        created = sdk.api.exec_create(container.id, ["echo", "hi"], tty=True)
        assert sdk.api.exec_start(created) == b"hi\r\n"
        created = sdk.api.exec_create(container.id, ["echo", "hi"], tty=True)
        assert sdk.api.exec_start(created, tty=True) == b"hi\r\n"
        out = sdk.api.exec_create(container.id, ["sh", "-c", "echo o; echo e >&2"], tty=True)
        assert sdk.api.exec_start(out, demux=True) == (b"o\r\ne\r\n", None)
    finally:
        container.remove(force=True)


def test_exec_of_a_missing_command_ends_with_126(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    try:
        assert container.exec_run("no-such-command")[0] == 126
        assert container.exec_run(["sh", "-c", "exit 127"])[0] == 127  # its own
    finally:
        container.remove(force=True)


def _closed_after(sock: Any, keys: bytes) -> bytes:
    """Send ``keys`` then read to the end (the server closes): what it sent before."""
    raw = getattr(sock, "_sock", sock)
    try:
        raw.settimeout(20)
        raw.sendall(keys)
        seen = b""
        while chunk := raw.recv(4096):
            seen += chunk
        return seen
    finally:
        raw.close()
        sock.close()


def test_detach_keys_end_an_attach_and_the_container_runs_on(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "cat", detach=True, stdin_open=True, tty=True)
    try:
        sock = sdk.api.attach_socket(container.id, {"stdin": 1, "stream": 1, "stdout": 1})
        raw = sock._sock
        raw.settimeout(20)
        raw.sendall(b"hi\n")
        seen = b""
        while b"hi" not in seen:  # cat on the terminal: the session works
            chunk = raw.recv(4096)
            assert chunk, seen
            seen += chunk
        _closed_after(sock, b"\x10\x11")
        container.reload()
        assert container.status == "running"
        other = sdk.api.attach_socket(
            container.id, {"stdin": 1, "stream": 1, "detachKeys": "ctrl-x,ctrl-y"}
        )
        # Stdin only, no output asked for: the session waits for the client,
        # across writes (a closed one would refuse the second: EPIPE).
        other._sock.sendall(b"\x18")
        time.sleep(0.5)
        assert _closed_after(other, b"\x19") == b""
    finally:
        container.remove(force=True)


def test_detach_keys_end_an_exec_session(sdk: docker.DockerClient) -> None:
    container = sdk.containers.run(IMAGE, "sleep 300", detach=True)
    try:
        created = sdk.api.exec_create(container.id, "cat", stdin=True, tty=True)
        sock = sdk.api.exec_start(created, tty=True, socket=True)
        _closed_after(sock, b"\x10\x11")
        assert sdk.api.exec_inspect(created["Id"])["Running"] is True
    finally:
        container.remove(force=True)


def test_attach_over_a_websocket(sdk: docker.DockerClient, service: Service) -> None:
    """``/containers/{id}/attach/ws``: binary messages, never framed, stdin from
    the client's messages (what docker-py's ``attach_socket(ws=True)`` opens)."""
    container = sdk.containers.create(IMAGE, "cat", stdin_open=True)
    url = (
        f"ws://127.0.0.1:{service.port}/v1.47/containers/{container.id}/attach/ws"
        "?stdin=1&stdout=1&stream=1&logs=1"
    )
    try:
        with connect(url, open_timeout=20) as ws:
            container.start()
            ws.send(b"over the socket\n")
            assert ws.recv(timeout=20) == b"over the socket\n"
    finally:
        container.remove(force=True)


def test_a_stdin_only_attach_lasts_until_the_client_detaches(sdk: docker.DockerClient) -> None:
    """No output asked for: the session stays open for the client's keys (it
    used to close at once, so the client's second write met a reset)."""
    container = sdk.containers.run(IMAGE, "cat", detach=True, stdin_open=True, tty=True)
    try:
        sock = sdk.api.attach_socket(container.id, {"stdin": True, "stream": True})
        raw = sock._sock
        for key in (b"\x10", b"\x11"):
            raw.sendall(key)
            time.sleep(0.5)
        container.reload()
        assert container.status == "running"
        assert _closed_after(sock, b"after\n") == b""
    finally:
        container.remove(force=True)
