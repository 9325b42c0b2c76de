"""``init: true`` with real containers: tini is PID 1, the command runs
under it, SIGTERM from a stop reaches the command, orphans are reaped.
Each test runs the same container without init too, which fails the check."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.e2e.conftest import logs, run
from tests.e2e.helpers import create, wait_for_output


def _parents() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) of every host process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The name may hold spaces: the fields after its ')' are fixed.
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[1]), fields[0])
    return found


def zombies_under(pid: int) -> int:
    procs = _parents()
    family, count, grew = {pid}, 0, True
    while grew:
        grew = False
        for child, (parent, _) in procs.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    for member in family - {pid}:
        count += procs[member][1] == "Z"
    return count


@pytest.mark.parametrize("image", ["busybox", "host"])
def test_the_command_runs_under_tini_as_pid_1(client: httpx.Client, image: str) -> None:
    container = run(
        client, ["sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; echo $$"], init=True, image=image
    )
    assert container["exit_code"] == 0, logs(client, container["id"])
    assert (
        logs(client, container["id"])
        == "/dev/init -- sh -c tr '\\0' ' ' </proc/1/cmdline; echo; echo $$ \n2\n"
    )
    plain = run(client, ["sh", "-c", "echo $$"], image=image)
    assert logs(client, plain["id"]) == "1\n"


@pytest.mark.parametrize("init", [True, False])
def test_orphans_are_reaped_only_with_init(client: httpx.Client, init: bool) -> None:
    # The orphan is re-parented to PID 1, here a sleep that never waits.
    script = "(sleep 0.1 &); echo spawned; exec sleep 30"
    container = create(client, ["sh", "-c", script], image="busybox", init=init)
    try:
        wait_for_output(client, container["id"], "spawned")
        deadline = time.monotonic() + 10
        zombies = zombies_under(container["pid"])
        while init is False and zombies == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            zombies = zombies_under(container["pid"])
        time.sleep(0.5)
        assert zombies_under(container["pid"]) == (0 if init else 1)
    finally:
        client.post(f"/containers/{container['id']}/kill")


@pytest.mark.parametrize("init", [True, False])
def test_a_stop_reaches_the_command_through_tini(client: httpx.Client, init: bool) -> None:
    container = create(client, ["sleep", "60"], image="busybox", init=init)
    if init:  # tini is set up (its signals blocked) once it has started the command
        deadline = time.monotonic() + 10
        while not any(p == container["pid"] for p, _ in _parents().values()):
            assert time.monotonic() < deadline, "tini never started the command"
            time.sleep(0.02)
    started = time.monotonic()
    stopped = client.post(f"/containers/{container['id']}/stop", params={"timeout": 20})
    assert stopped.status_code == 200, stopped.text
    assert time.monotonic() - started < 10
    record = stopped.json()
    if init:
        # sleep died of SIGTERM, tini passes that on as 128 + 15.
        assert (record["exit_code"], record["signal"]) == (143, None)
    else:
        # A PID 1 without a handler never gets SIGTERM: stop kills it at once.
        assert (record["exit_code"], record["signal"]) == (137, "SIGKILL")
