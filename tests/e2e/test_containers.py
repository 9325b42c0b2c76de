"""The container life cycle over HTTP against a real service: exit codes,
signals, exec errors, env and workdir, validation, names and lookup, list,
wait, kill, stop, delete, and the docs page."""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, logs, run
from tests.e2e.helpers import create, unique, wait, wait_for_output


# -- exit codes and signals -----------------------------------------------------
@pytest.mark.parametrize("code", [0, 1, 2, 42, 255])
def test_exit_code_is_the_commands(client: httpx.Client, code: int) -> None:
    container = run(client, ["sh", "-c", f"exit {code}"])
    assert container["status"] == "exited"
    assert container["exit_code"] == code
    assert container["signal"] is None
    assert container["error"] is None
    assert container["pid"] is None
    assert container["finished_at"] is not None


def test_container_object_shape(client: httpx.Client) -> None:
    container = run(client, ["true"])
    assert re.fullmatch(r"[0-9a-f]{64}", str(container["id"]))
    assert container["name"] == container["id"]
    assert container["command"] == ["true"]
    for stamp in ("created_at", "started_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", str(container[stamp]))
    assert str(container["created_at"]) <= str(container["started_at"])
    assert str(container["started_at"]) <= str(container["finished_at"])


def test_ids_are_distinct(client: httpx.Client) -> None:
    ids = {run(client, ["true"])["id"] for _ in range(5)}
    assert len(ids) == 5


def test_kill_gives_128_plus_n_and_the_signal_name(client: httpx.Client) -> None:
    container = create(client, ["sleep", "60"])
    assert container["status"] == "running"
    assert isinstance(container["pid"], int) and container["pid"] > 1
    # `pid` is the host's pid of the command, which is PID 1 of its namespace.
    with open(f"/proc/{container['pid']}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x0060\x00"
    with open(f"/proc/{container['pid']}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
    assert nspid == [str(container["pid"]), "1"]
    response = client.post(f"/containers/{container['id']}/kill")
    assert response.status_code == 200, response.text
    done = wait(client, container["id"])
    assert (done["status"], done["exit_code"], done["signal"]) == ("exited", 137, "SIGKILL")
    assert done["pid"] is None


def test_death_by_a_fault_is_decoded_too(client: httpx.Client) -> None:
    # A fault's SIGSEGV is forced on the task, so even PID 1 dies of it.
    # The system's python: the checkout (and its venv) may be under /tmp,
    # which the host image hides.
    container = run(client, ["/usr/bin/python3", "-c", "import ctypes; ctypes.string_at(0)"])
    assert (container["exit_code"], container["signal"]) == (139, "SIGSEGV")


def test_kill_with_a_signal_the_container_handles(client: httpx.Client) -> None:
    script = 'trap "echo got usr1; exit 5" USR1; echo ready; while :; do sleep 0.05; done'
    container = create(client, ["sh", "-c", script])
    wait_for_output(client, container["id"], "ready")
    response = client.post(f"/containers/{container['id']}/kill", params={"signal": "USR1"})
    assert response.status_code == 200, response.text
    done = wait(client, container["id"])
    assert (done["exit_code"], done["signal"]) == (5, None)
    assert logs(client, str(container["id"])) == "ready\ngot usr1\n"


# -- exec errors ------------------------------------------------------------------
def test_command_not_in_path_is_127(client: httpx.Client) -> None:
    container = run(client, ["no-such-command-xyz"])
    assert (container["status"], container["exit_code"]) == ("exited", 127)
    assert "no-such-command-xyz" in str(container["error"])
    assert "not found" in str(container["error"])


def test_missing_absolute_path_is_127(client: httpx.Client) -> None:
    container = run(client, ["/no/such/binary"])
    assert container["exit_code"] == 127
    assert container["error"] == "exec /no/such/binary: No such file or directory"


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc"])
def test_not_executable_is_126(client: httpx.Client, path: str) -> None:
    container = run(client, [path])
    assert container["exit_code"] == 126
    assert container["error"] == f"exec {path}: Permission denied"


def test_a_found_command_that_cannot_run_is_126_with_the_reason(
    client: httpx.Client, tmp_path: Path
) -> None:
    # execve(2) gives ETXTBSY for a file open for writing: found, not runnable.
    binary = tmp_path / "busy"
    binary.write_bytes(Path("/bin/true").read_bytes())
    binary.chmod(0o755)
    # The host image hides the host's /tmp: bind tmp_path in.
    bind = [{"type": "bind", "source": str(tmp_path), "target": str(tmp_path)}]
    with open(binary, "ab"):
        for command, env in [([str(binary)], {}), (["busy"], {"PATH": f"{tmp_path}:/bin"})]:
            container = run(client, command, env=env, mounts=bind)
            assert container["exit_code"] == 126, command
            assert container["error"] == f"exec {binary}: Text file busy"


def test_an_empty_command_name_is_127(client: httpx.Client) -> None:
    container = run(client, [""])
    assert (container["exit_code"], container["error"]) == (127, "exec '': empty command name")


def test_exec_error_is_201_even_without_wait(client: httpx.Client) -> None:
    response = client.post("/containers", json={"command": ["no-such-command-xyz"]})
    assert response.status_code == 201
    # The error is final at once: the answer waits for the exec verdict.
    assert response.json()["exit_code"] == 127
    assert response.json()["status"] == "exited"


def test_a_command_exiting_127_itself_has_no_error(client: httpx.Client) -> None:
    container = run(client, ["sh", "-c", "exit 127"])
    assert (container["exit_code"], container["error"]) == (127, None)


# -- environment and working directory ---------------------------------------------
def test_default_environment(client: httpx.Client) -> None:
    container = run(client, ["env"])
    env = dict(line.split("=", 1) for line in logs(client, str(container["id"])).splitlines())
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOSTNAME"] == str(container["id"])[:12]
    # Nothing of the service's own environment leaks in.
    assert "MYDOCKER_STATE_DIR" not in env and "PYTHONPATH" not in env


def test_custom_environment(client: httpx.Client) -> None:
    custom = {"GREETING": "hello world", "EMPTY": "", "EQUALS": "a=b", "PATH": "/bin:/usr/bin"}
    container = run(client, ["env"], env=custom)
    env = dict(line.split("=", 1) for line in logs(client, str(container["id"])).splitlines())
    for key, value in custom.items():
        assert env[key] == value


def test_path_from_env_is_used_to_find_the_command(client: httpx.Client) -> None:
    container = run(client, ["true"], env={"PATH": "/nowhere"})
    assert container["exit_code"] == 127
    assert "/nowhere" in str(container["error"])


def test_workdir(client: httpx.Client) -> None:
    container = run(client, ["pwd"], workdir="/tmp")
    assert logs(client, str(container["id"])) == "/tmp\n"
    container = run(client, ["pwd"])
    assert logs(client, str(container["id"])) == "/\n"


def test_bad_workdir_fails_in_its_step(client: httpx.Client) -> None:
    # A missing workdir is created (tests/e2e/test_rootfs.py); a file is not a directory.
    container = run(client, ["pwd"], workdir="/etc/hostname")
    assert container["status"] == "exited"
    assert container["exit_code"] not in (0, None)
    assert container["error"] == "chdir /etc/hostname: Not a directory"


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": []}, "command"),
        ({"command": ["echo", "a\u0000b"]}, "command"),
        ({"command": ["true"], "name": "-bad"}, "name"),
        ({"command": ["true"], "name": "bad/name"}, "name"),
        ({"command": ["true"], "hostname": "under_score"}, "hostname"),
        ({"command": ["true"], "hostname": "x" * 65}, "hostname"),
        ({"command": ["true"], "env": {"A=B": "1"}}, "env"),
        ({"command": ["true"], "env": {"": "1"}}, "env"),
        ({"command": ["true"], "surprise": True}, "surprise"),
        ({"command": ["true"], "workdir": "tmp"}, "workdir"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    before = len(client.get("/containers", params={"status": "created"}).json())
    response = client.post("/containers", json=body)
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locs), locs
    assert len(client.get("/containers", params={"status": "created"}).json()) == before


# -- names and lookup ---------------------------------------------------------------------
def test_name_clash_is_409(client: httpx.Client) -> None:
    name = unique()
    first = run(client, ["true"], name=name)
    response = client.post("/containers", json={"command": ["true"], "name": name})
    assert response.status_code == 409
    assert name in response.json()["detail"]
    # The first keeps its name; no second record appeared.
    assert [c["id"] for c in client.get("/containers", params={"name": name}).json()] == [
        first["id"]
    ]


def test_the_longest_name(client: httpx.Client) -> None:
    name = (unique("n") + "x" * 128)[:128]
    assert len(name) == 128
    assert run(client, ["true"], name=name)["name"] == name
    assert client.get(f"/containers/{name}").json()["name"] == name
    response = client.post("/containers", json={"command": ["true"], "name": name + "y"})
    assert response.status_code == 422


def test_lookup_by_id_prefix_and_name(client: httpx.Client) -> None:
    name = unique()
    container = run(client, ["true"], name=name)
    cid = str(container["id"])
    for ref in (cid, cid[:12], cid[:20], name):
        response = client.get(f"/containers/{ref}")
        assert response.status_code == 200, ref
        assert response.json()["id"] == cid


@pytest.mark.parametrize("ref", ["no-such-container", "f" * 64, "0" * 63 + "g"])
def test_unknown_reference_is_404(client: httpx.Client, ref: str) -> None:
    response = client.get(f"/containers/{ref}")
    assert response.status_code == 404
    assert ref in response.json()["detail"]
    for method, path in [
        ("POST", f"/containers/{ref}/wait"),
        ("POST", f"/containers/{ref}/kill"),
        ("POST", f"/containers/{ref}/stop"),
        ("DELETE", f"/containers/{ref}"),
        ("GET", f"/containers/{ref}/logs"),
    ]:
        assert client.request(method, path).status_code == 404, (method, path)


def test_ambiguous_prefix_is_409(client: httpx.Client) -> None:
    # 17 ids share a first hex digit somewhere (pigeonhole).
    by_first: dict[str, list[str]] = defaultdict(list)
    for _ in range(17):
        cid = str(run(client, ["true"])["id"])
        by_first[cid[0]].append(cid)
    prefix, ids = next((p, ids) for p, ids in by_first.items() if len(ids) > 1)
    response = client.get(f"/containers/{prefix}")
    assert response.status_code == 409
    assert "matches" in response.json()["detail"]
    # Each of them is still reachable by a longer prefix and by its id.
    for cid in ids:
        assert client.get(f"/containers/{cid[:16]}").json()["id"] == cid
        assert client.get(f"/containers/{cid}").json()["id"] == cid


# -- list ---------------------------------------------------------------------------------
def test_list_newest_first_with_filters(client: httpx.Client) -> None:
    tag = unique("list")
    names = [f"{tag}-{i}" for i in range(3)]
    for name in names:
        run(client, ["true"], name=name)
    running = create(client, ["sleep", "60"], name=f"{tag}-running")
    try:
        everything = client.get("/containers").json()
        ours = [c["name"] for c in everything if str(c["name"]).startswith(tag)]
        assert ours == [f"{tag}-running", *reversed(names)]
        exited = client.get("/containers", params={"status": "exited"}).json()
        assert all(c["status"] == "exited" for c in exited)
        assert [c["name"] for c in exited if str(c["name"]).startswith(tag)] == names[::-1]
        now_running = client.get("/containers", params={"status": "running"}).json()
        assert all(c["status"] == "running" for c in now_running)
        assert running["id"] in [c["id"] for c in now_running]
        only = client.get("/containers", params={"name": names[1]}).json()
        assert [c["name"] for c in only] == [names[1]]
        assert (
            client.get("/containers", params={"name": names[1], "status": "running"}).json() == []
        )
    finally:
        client.post(f"/containers/{running['id']}/kill")
    assert client.get("/containers", params={"status": "bogus"}).status_code == 422


# -- wait --------------------------------------------------------------------------------
def test_wait_with_timeout_answers_with_the_running_container(client: httpx.Client) -> None:
    container = create(client, ["sleep", "60"])
    try:
        assert wait(client, container["id"], timeout=0.2)["status"] == "running"
    finally:
        client.post(f"/containers/{container['id']}/kill")
    assert wait(client, container["id"])["exit_code"] == 137


def test_wait_on_an_exited_container_answers_at_once(client: httpx.Client) -> None:
    container = run(client, ["sh", "-c", "exit 9"])
    assert wait(client, container["id"], timeout=30)["exit_code"] == 9


# -- kill ----------------------------------------------------------------------------------
def test_kill_rules(client: httpx.Client) -> None:
    container = create(client, ["sleep", "60"])
    cid = container["id"]
    try:
        for bad in ("SIGNOPE", "0", "999", "-9"):
            response = client.post(f"/containers/{cid}/kill", params={"signal": bad})
            assert response.status_code == 422, bad
            assert response.json()["detail"][0]["loc"] == ["query", "signal"]
        assert client.get(f"/containers/{cid}").json()["status"] == "running"
    finally:
        assert client.post(f"/containers/{cid}/kill", params={"signal": "9"}).status_code == 200
    wait(client, cid)
    response = client.post(f"/containers/{cid}/kill")
    assert response.status_code == 409
    assert "not running" in response.json()["detail"]


# -- stop -----------------------------------------------------------------------------------
def test_stop_ends_sleep_promptly(client: httpx.Client) -> None:
    # sleep has no SIGTERM handler and, as PID 1, would never see SIGTERM:
    # stop must not sit out the whole grace period.
    container = create(client, ["sleep", "60"])
    started = time.monotonic()
    response = client.post(f"/containers/{container['id']}/stop", params={"timeout": 30})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    done = response.json()
    assert (done["status"], done["exit_code"], done["signal"]) == ("exited", 137, "SIGKILL")
    assert elapsed < 30


def test_stop_sends_sigterm_to_a_shell_that_traps_it(client: httpx.Client) -> None:
    script = 'trap "echo got term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'
    container = create(client, ["sh", "-c", script])
    wait_for_output(client, container["id"], "ready")
    response = client.post(f"/containers/{container['id']}/stop", params={"timeout": 30})
    assert response.status_code == 200
    done = response.json()
    assert (done["status"], done["exit_code"], done["signal"]) == ("exited", 7, None)
    assert logs(client, str(container["id"])) == "ready\ngot term\n"


def test_stop_escalates_to_sigkill_after_the_grace_period(client: httpx.Client) -> None:
    script = 'trap "echo ignoring term" TERM; echo ready; while :; do sleep 0.05; done'
    container = create(client, ["sh", "-c", script])
    wait_for_output(client, container["id"], "ready")
    response = client.post(f"/containers/{container['id']}/stop", params={"timeout": 0.5})
    done = response.json()
    assert (done["exit_code"], done["signal"]) == (137, "SIGKILL")
    assert "ignoring term" in logs(client, str(container["id"]))


def test_stop_of_an_exited_container_changes_nothing(client: httpx.Client) -> None:
    container = run(client, ["sh", "-c", "exit 4"])
    response = client.post(f"/containers/{container['id']}/stop")
    assert response.status_code == 200
    assert response.json() == container


# -- delete -----------------------------------------------------------------------------------
def test_delete_rules(client: httpx.Client, service: Service) -> None:
    container = create(client, ["sh", "-c", "echo output; sleep 60"])
    cid = str(container["id"])
    directory = Path(service.state_dir) / "containers" / cid
    wait_for_output(client, cid, "output")
    assert directory.is_dir()
    response = client.delete(f"/containers/{cid}")
    assert response.status_code == 409
    assert client.get(f"/containers/{cid}").json()["status"] == "running"
    pid = container["pid"]
    response = client.delete(f"/containers/{cid}", params={"force": "true"})
    assert response.status_code == 204
    assert client.get(f"/containers/{cid}").status_code == 404
    assert client.get(f"/containers/{cid}/logs").status_code == 404
    assert client.delete(f"/containers/{cid}").status_code == 404
    assert not directory.exists()
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie_free_or_other(pid)


def _is_zombie_free_or_other(pid: object) -> bool:
    """The killed container's pid is gone, or reused by an unrelated process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"sleep\x0060" not in f.read()
    except OSError:
        return True


def test_delete_an_exited_container(client: httpx.Client, service: Service) -> None:
    name = unique()
    container = run(client, ["echo", "bye"], name=name)
    assert client.delete(f"/containers/{name}").status_code == 204
    assert client.get(f"/containers/{container['id']}").status_code == 404
    assert not (Path(service.state_dir) / "containers" / str(container["id"])).exists()
    # The name is free again.
    assert run(client, ["true"], name=name)["name"] == name


# -- docs -----------------------------------------------------------------------------------------
def test_docs_page_is_served_without_a_cdn(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert "SwaggerUIBundle" in html
    assert not re.search(r"https?://", html), "the docs page must not load anything remote"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        asset_response = client.get(asset)
        assert asset_response.status_code == 200, asset
        assert len(asset_response.content) > 0


def test_openapi_lists_the_routes(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/containers"]) >= {"get", "post"}
    assert set(paths["/containers/{ref}"]) >= {"get", "delete"}
    for action in ("wait", "kill", "stop"):
        assert "post" in paths[f"/containers/{{ref}}/{action}"]
    assert "get" in paths["/containers/{ref}/logs"]
    assert "ContainerCreate" in schema["components"]["schemas"]
