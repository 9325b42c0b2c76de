"""Captured output over HTTP: streams, tail, follow, and 20 MB kept intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from tests.e2e.conftest import logs, run
from tests.e2e.helpers import create, wait, wait_for_output


def test_stdout_and_stderr_are_kept_apart(client: httpx.Client) -> None:
    container = run(client, ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"])
    cid = str(container["id"])
    assert logs(client, cid, stream="stdout") == "out1\nout2\n"
    assert logs(client, cid, stream="stderr") == "err1\nerr2\n"
    # Both: stdout first, then stderr (the files keep no relative order).
    assert logs(client, cid) == "out1\nout2\nerr1\nerr2\n"


def test_tail(client: httpx.Client) -> None:
    container = run(client, ["seq", "1", "1000"])
    cid = str(container["id"])
    assert logs(client, cid, tail=3) == "998\n999\n1000\n"
    assert logs(client, cid, tail=1) == "1000\n"
    assert logs(client, cid, tail=0) == ""
    assert logs(client, cid, tail=5000) == "".join(f"{i}\n" for i in range(1, 1001))
    assert client.get(f"/containers/{cid}/logs", params={"tail": -1}).status_code == 422


def test_tail_of_output_without_a_final_newline(client: httpx.Client) -> None:
    container = run(client, ["printf", "a\\nb\\nlast"])
    assert logs(client, str(container["id"]), tail=2) == "b\nlast"


def test_tail_per_stream(client: httpx.Client) -> None:
    container = run(client, ["sh", "-c", "seq 1 5; seq 11 15 >&2"])
    cid = str(container["id"])
    assert logs(client, cid, tail=2) == "4\n5\n14\n15\n"
    assert logs(client, cid, tail=2, stream="stderr") == "14\n15\n"


def test_no_output_is_an_empty_body(client: httpx.Client) -> None:
    assert logs(client, str(run(client, ["true"])["id"])) == ""


def test_bad_stream_is_422(client: httpx.Client) -> None:
    cid = run(client, ["true"])["id"]
    response = client.get(f"/containers/{cid}/logs", params={"stream": "stdin"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "stream"]


def _await_file(path: Path) -> str:
    """Shell: wait for ``path`` to appear; exit 99 after about 30 s."""
    return f"i=0; until [ -e {path} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 99; sleep 0.05; done"


def _bind(path: Path) -> dict[str, object]:
    # The host image hides the host's /tmp: bind the test's directory in.
    return {"type": "bind", "source": str(path), "target": str(path), "read_only": True}


def test_follow_streams_until_the_container_exits(client: httpx.Client, tmp_path: Path) -> None:
    # A file the test creates tells the container when to go on: no timing
    # guesses.  (Exit 99 if it never comes, which fails the test.)
    trigger = tmp_path / "go"
    script = f"echo first; {_await_file(trigger)}; echo second; echo to-stderr >&2; exit 3"
    container = create(client, ["sh", "-c", script], mounts=[_bind(tmp_path)])
    cid = container["id"]
    received = b""
    with client.stream("GET", f"/containers/{cid}/logs", params={"follow": "true"}) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        while b"first\n" not in received:
            received += next(chunks)
        # The stream is open while the container still runs.
        assert client.get(f"/containers/{cid}").json()["status"] == "running"
        trigger.touch()
        for chunk in chunks:
            received += chunk
    # The stream ended by itself, because the container exited.
    assert client.get(f"/containers/{cid}").json()["exit_code"] == 3
    assert sorted(received.decode().splitlines()) == ["first", "second", "to-stderr"]


def test_follow_of_an_exited_container_ends_at_once(client: httpx.Client) -> None:
    container = run(client, ["echo", "done"])
    # The client's timeout bounds this: a follow that never ended would fail.
    assert logs(client, str(container["id"]), follow="true") == "done\n"


def test_follow_with_tail_and_stream(client: httpx.Client, tmp_path: Path) -> None:
    trigger = tmp_path / "go"
    script = f"seq 1 10; {_await_file(trigger)}; echo 11; echo noise >&2"
    container = create(client, ["sh", "-c", script], mounts=[_bind(tmp_path)])
    # The tail is taken when the request comes: let the first lines be written.
    wait_for_output(client, container["id"], "10\n")
    params: dict[str, str | int] = {"follow": "true", "tail": 2, "stream": "stdout"}
    received = b""
    with client.stream("GET", f"/containers/{container['id']}/logs", params=params) as response:
        chunks = response.iter_bytes()
        while b"10\n" not in received:
            received += next(chunks)
        trigger.touch()
        for chunk in chunks:
            received += chunk
    assert received == b"9\n10\n11\n"
    assert client.get(f"/containers/{container['id']}").json()["exit_code"] == 0


def test_twenty_megabytes_of_output_intact(client: httpx.Client, tmp_path: Path) -> None:
    # Random bytes (not text) so any loss, reordering or re-encoding shows.
    size = 20 * 1024 * 1024
    source = tmp_path / "payload"
    source.write_bytes(os.urandom(size))
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    # Nobody reads while the container writes: output goes to a file, not
    # a pipe that could fill up and stall it.
    # The host image hides the host's /tmp: bind tmp_path in, read-only.
    bind = {"type": "bind", "source": str(tmp_path), "target": str(tmp_path), "read_only": True}
    container = run(client, ["sh", "-c", f"cat {source}; cat {source} >&2"], mounts=[bind])
    assert container["exit_code"] == 0
    for stream in ("stdout", "stderr"):
        digest = hashlib.sha256()
        length = 0
        with client.stream(
            "GET", f"/containers/{container['id']}/logs", params={"stream": stream}
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
                length += len(chunk)
        assert length == size, stream
        assert digest.hexdigest() == expected, stream


def test_logs_survive_the_container_and_go_with_delete(client: httpx.Client) -> None:
    container = create(client, ["sh", "-c", "echo kept; sleep 60"])
    cid = container["id"]
    wait_for_output(client, cid, "kept")
    client.post(f"/containers/{cid}/kill")
    assert wait(client, cid)["exit_code"] == 137
    assert logs(client, str(cid)) == "kept\n"
    assert client.delete(f"/containers/{cid}").status_code == 204
    assert client.get(f"/containers/{cid}/logs").status_code == 404
