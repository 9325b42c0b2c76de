"""Records, exit codes and logs survive a restart of the API process.

The launcher (the containers' parent) outlives the API, so a container that
runs across the restart keeps running, and one that exits while the API is
down keeps its real exit code until the new API process has recorded it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, wait


def _waiting_script(trigger: Path, code: int) -> list[str]:
    # Exits with `code` once the test creates `trigger`; with 99 after ~60 s
    # without it, so a failed test never leaves it behind and a missed
    # trigger cannot pass for the real exit code.
    return [
        "sh",
        "-c",
        f"echo started; i=0; until [ -e {trigger} ]; do i=$((i+1)); "
        f"[ $i -gt 1200 ] && exit 99; sleep 0.05; done; echo finished; exit {code}",
    ]


def _wait_until_reaped(pid: int, timeout: float = 30) -> None:
    # The launcher reaps it through its pidfd; then its /proc entry goes.
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, f"pid {pid} did not exit"
        time.sleep(0.02)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "crashed"])
def test_records_and_running_containers_survive_a_restart(
    own_service: Service, tmp_path: Path, how: signal.Signals
) -> None:
    own_service.start()
    across, during = tmp_path / "across", tmp_path / "during"
    try:
        with httpx.Client(base_url=own_service.url, timeout=60) as client:
            finished = run(client, ["sh", "-c", "echo persisted; echo warn >&2; exit 3"])
            killed = create(client, ["sleep", "60"], name="to-be-killed")
            client.post("/containers/to-be-killed/kill")
            killed = wait(client, killed["id"])
            failed = run(client, ["no-such-command-xyz"])
            # The host image hides the host's /tmp: bind tmp_path in for the triggers.
            bind = [{"type": "bind", "source": str(tmp_path), "target": str(tmp_path)}]
            running = create(client, _waiting_script(across, 42), name="runs-across", mounts=bind)
            down_pid = create(
                client, _waiting_script(during, 7), name="exits-while-down", mounts=bind
            )["pid"]
            before = client.get("/containers").json()
        launcher = own_service.launcher_pid()
        assert launcher is not None

        own_service.stop(how)
        # While the API is down: one container exits; the launcher keeps its status.
        during.touch()
        _wait_until_reaped(int(str(down_pid)))
        own_service.start()
        assert own_service.launcher_pid() == launcher, "the launcher should outlive the API"

        with httpx.Client(base_url=own_service.url, timeout=60) as client:
            got = client.get(f"/containers/{finished['id']}").json()
            assert got == finished
            assert logs(client, str(finished["id"]), stream="stdout") == "persisted\n"
            assert logs(client, str(finished["id"]), stream="stderr") == "warn\n"
            assert client.get("/containers/to-be-killed").json() == killed
            assert (killed["exit_code"], killed["signal"]) == (137, "SIGKILL")
            assert client.get(f"/containers/{failed['id']}").json() == failed

            down = wait(client, "exits-while-down")
            assert (down["status"], down["exit_code"], down["error"]) == ("exited", 7, None)
            assert logs(client, "exits-while-down") == "started\nfinished\n"

            still = client.get("/containers/runs-across").json()
            assert still["status"] == "running"
            assert still["pid"] == running["pid"]
            across.touch()
            done = wait(client, "runs-across")
            assert (done["status"], done["exit_code"], done["signal"]) == ("exited", 42, None)
            assert logs(client, "runs-across") == "started\nfinished\n"

            # The same containers, in the same order, newest first.
            after = client.get("/containers").json()
            assert [c["id"] for c in after] == [c["id"] for c in before]
    finally:
        across.touch()
        during.touch()


def test_a_fresh_service_on_an_old_state_dir_without_a_launcher(
    own_service: Service,
) -> None:
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        finished = run(client, ["sh", "-c", "echo old; exit 5"], name="old")
    own_service.stop()
    # The launcher goes too (it would idle out by itself); a new one starts.
    own_service.stop_launcher()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        assert client.get("/containers/old").json() == finished
        assert logs(client, "old") == "old\n"
        assert run(client, ["sh", "-c", "exit 6"])["exit_code"] == 6
        assert [c["name"] for c in client.get("/containers").json()][-1] == "old"
