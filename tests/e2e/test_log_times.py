"""Dated output over HTTP (runtime/logindex.py): timestamps, since, until.

The times are when the launcher saw the output written, so they are only
checked loosely: inside the run, in order, and about as far apart as the
command slept (bounds wide enough for a loaded machine)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import httpx

from runtime.timeutil import parse_ns, rfc3339_nano
from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, wait

#: Prints a, sleeps 1.2 s, prints b.
A_SLEEP_B = ["sh", "-c", "echo a; sleep 1.2; echo b"]
NS = 10**9


def dated(text: str) -> list[tuple[int, str]]:
    """``[(unix ns, line), ...]`` of ``timestamps=true`` output."""
    out = []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        assert len(stamp) == len("2026-11-29T05:00:00.123456789Z"), line
        assert stamp.endswith("Z")
        out.append((parse_ns(stamp), rest))
    return out


def check_a_then_b(lines: list[tuple[int, str]], record: dict[str, object]) -> int:
    """The two lines are in the run and ~1.2 s apart; returns a time between them."""
    assert [text for _, text in lines] == ["a", "b"]
    (a, _), (b, _) = lines
    # The records keep microseconds: allow 1 ms either side.
    start = parse_ns(str(record["started_at"])) - NS // 1000
    end = parse_ns(str(record["finished_at"])) + NS // 1000
    assert start <= a < b <= end
    assert 0.9 * NS < b - a < 10 * NS
    return (a + b) // 2


def test_timestamps_since_and_until(client: httpx.Client) -> None:
    container = run(client, A_SLEEP_B)
    cid = str(container["id"])
    middle = check_a_then_b(dated(logs(client, cid, timestamps="true")), container)
    assert logs(client, cid, since=f"{middle / NS:.9f}") == "b\n"
    assert logs(client, cid, until=rfc3339_nano(middle)) == "a\n"
    assert logs(client, cid, since=rfc3339_nano(middle), until=f"{middle / NS:.3f}") == ""
    assert dated(logs(client, cid, timestamps="true", tail=1))[0][1] == "b"
    bad = client.get(f"/containers/{cid}/logs", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "since"]


def test_streams_merge_by_time_and_follow_dates_as_it_goes(client: httpx.Client) -> None:
    command = ["sh", "-c", "echo a; sleep 1.2; echo e >&2; sleep 1.2; echo c"]
    container = create(client, command)
    cid = str(container["id"])
    with client.stream(
        "GET", f"/containers/{cid}/logs", params={"follow": "true", "timestamps": "true"}
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    lines = dated(text)
    assert [line for _, line in lines] == ["a", "e", "c"]
    assert lines[0][0] < lines[1][0] < lines[2][0]
    record = wait(client, cid)
    assert parse_ns(str(record["started_at"])) - NS // 1000 <= lines[0][0]
    assert lines[2][0] <= parse_ns(str(record["finished_at"])) + NS // 1000
    # The same times when read again, after the exit.
    assert dated(logs(client, cid, timestamps="true")) == lines


def test_a_tty_container_is_dated_too(client: httpx.Client) -> None:
    container = run(client, A_SLEEP_B, tty=True)
    text = logs(client, str(container["id"]), timestamps="true").replace("\r\n", "\n")
    check_a_then_b(dated(text), container)


def test_exec_logs_are_dated(client: httpx.Client) -> None:
    container = create(client, ["sleep", "60"])
    cid = str(container["id"])
    try:
        response = client.post(f"/containers/{cid}/exec?wait=true", json={"command": A_SLEEP_B})
        assert response.status_code == 201, response.text
        execution = response.json()
        got = client.get(f"/execs/{execution['id']}/logs", params={"timestamps": "1"})
        assert got.status_code == 200, got.text
        middle = check_a_then_b(dated(got.text), execution)
        since = client.get(f"/execs/{execution['id']}/logs", params={"since": rfc3339_nano(middle)})
        assert since.text == "b\n"
    finally:
        client.delete(f"/containers/{cid}", params={"force": "true"})


def test_logs_written_before_the_index_fall_back_to_the_exit_time(
    client: httpx.Client, service: Service
) -> None:
    container = run(client, A_SLEEP_B)
    cid = str(container["id"])
    directory = Path(service.state_dir, "containers", cid)
    for name in ("stdout.idx", "stderr.idx"):
        if (directory / name).exists():
            os.unlink(directory / name)
    finished = parse_ns(str(container["finished_at"]))
    assert dated(logs(client, cid, timestamps="true")) == [(finished, "a"), (finished, "b")]
    started = datetime.fromisoformat(str(container["started_at"]).replace("Z", "+00:00"))
    assert logs(client, cid, since=str(started.timestamp() - 1)) == "a\nb\n"
    assert logs(client, cid, since=f"{finished / NS + 1:.6f}") == ""


def test_times_survive_a_restart_of_the_service(own_service: Service) -> None:
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        container = run(client, A_SLEEP_B)
        before = logs(client, str(container["id"]), timestamps="true")
    own_service.stop()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        after = logs(client, str(container["id"]), timestamps="true")
        record = client.get(f"/containers/{container['id']}").json()
    assert after == before
    check_a_then_b(dated(after), record)
