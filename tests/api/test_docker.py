"""The Docker API (app/docker) over a fake runtime: paths, headers, shapes, refusals.

The real clients' tests are in tests/e2e/test_docker_cli.py and
test_docker_py.py; these pin down the mapping onto the runtime and the
error cases a client rarely shows.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from app.docker import containers
from runtime import ContainerRecord, InvalidState, NameInUse, NotFound
from runtime.health import Health, HealthStatus, Probe
from runtime.images import Image
from runtime.images.oci import ImageConfig
from runtime.images.pull import PullProgress
from runtime.images.registry import Credentials
from runtime.options import Healthcheck, Options
from runtime.spec import ContainerSpec, Limits, Status
from tests.fakes.runtime import FakeRuntime

PULLED_ID = "sha256:" + "ab" * 32
PULLED = Image(
    "localhost:5000/app:1",
    False,
    None,
    kind="pulled",
    id=PULLED_ID,
    tags=("localhost:5000/app:1",),
    digests=("localhost:5000/app@sha256:" + "cd" * 32,),
    diff_ids=("sha256:" + "01" * 32, "sha256:" + "02" * 32),
    config=ImageConfig(
        entrypoint=("/bin/sh", "-c"),
        cmd=("echo hi",),
        env=("PATH=/bin",),
        working_dir="/w",
        exposed_ports=("80/tcp",),
        labels={"a": "b"},
    ),
)

ID = "0123456789abcdef" * 4
T0 = "2026-11-29T05:00:00.000000Z"
T1 = "2026-11-29T05:00:01.500000Z"
T0_NS, T1_NS = 1_795_928_400 * 10**9, 1_795_928_401_500_000_000

#: What `docker run --rm --name x host echo hi` sends (CLI 28.2, trimmed of
#: nothing: every zero value is there, as the CLI sends it).
CLI_BODY: dict[str, Any] = json.loads("""{"Hostname":"","Domainname":"","User":"",
"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,
"StdinOnce":false,"Env":[],"Cmd":["echo","hi"],"Image":"host","Volumes":{},"WorkingDir":"",
"Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"",
"LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},
"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"",
"VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"",
"Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"",
"Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,
"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"",
"UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,
"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],
"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,
"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
"Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],
"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,
"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,
"Links":null,"Aliases":null,"DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"",
"Gateway":"","IPAddress":"","MacAddress":"","IPPrefixLen":0,"IPv6Gateway":"",
"GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}""")


def make_record(status: str = "running", **changes: Any) -> ContainerRecord:
    values: dict[str, Any] = {
        "id": ID,
        "name": "web",
        "status": status,
        "spec": ContainerSpec(
            command=("sleep", "60"), hostname=ID[:12], env={"A": "1"}, labels={"k": "v"}
        ),
        "created_at": T0,
        "pid": 4242,
        "started_at": T0 if status != "created" else None,
    }
    if status == "exited":
        values.update(exit_code=3, finished_at=T1)
    values.update(changes)
    return ContainerRecord(**values)


@pytest.fixture
def fake() -> FakeRuntime:
    """``web`` running beside an exited ``old``; a future both waits share
    (a container auto-removed as it exits); output on both streams."""
    old_spec = ContainerSpec(command=("true",), hostname="h")
    fake = FakeRuntime(
        make_record(), others=[make_record("exited", id="f" * 64, name="old", spec=old_spec)]
    )
    fake.removal = fake.exit
    fake.images = [Image("host", True, None), Image("busybox", True, "/x", T0, 1000, 10)]
    fake.stats_sample = {
        "memory_bytes": 1000,
        "memory_peak_bytes": 2000,
        "cpu_seconds": 1.5,
        "pids": 2,
    }
    fake.chunks = [("stdout", b"out\n"), ("stderr", b"err\n")]
    fake.lines = [
        ("stdout", T0_NS + 123_456_789, b"out\n"),
        ("stderr", T0_NS + 5 * 10**8, b"err\n"),
        ("stdout", 0, b""),  # a heartbeat
        ("stdout", T1_NS, b"last\n"),
    ]
    return fake


# -- versions and paths -----------------------------------------------------
def test_ping_carries_the_api_version_and_head_has_no_body(client: TestClient) -> None:
    got = client.get("/_ping")
    assert (got.status_code, got.text, got.headers["api-version"]) == (200, "OK", "1.47")
    head = client.head("/_ping")
    assert (head.status_code, head.content, head.headers["api-version"]) == (200, b"", "1.47")


def test_version_under_any_supported_prefix(client: TestClient) -> None:
    for path in ("/version", "/v1.47/version", "/v1.41/version"):
        body = client.get(path).json()
        assert (body["ApiVersion"], body["Os"]) == ("1.47", "linux"), path


@pytest.mark.parametrize(("prefix", "word"), [("v1.50", "too new"), ("v1.12", "too old")])
def test_versions_we_do_not_serve_are_refused(client: TestClient, prefix: str, word: str) -> None:
    got = client.get(f"/{prefix}/version")
    assert got.status_code == 400
    assert word in got.json()["message"]
    assert got.headers["api-version"] == "1.47"


def test_errors_have_dockers_shape_and_headers(client: TestClient) -> None:
    got = client.get("/v1.47/no/such/path")
    assert (got.status_code, got.json()) == (404, {"message": "page not found"})
    assert got.headers["api-version"] == "1.47"
    missing = client.get("/v1.47/containers/nope/json")
    assert (missing.status_code, missing.json()) == (404, {"message": "no such container: nope"})


def test_unprefixed_paths_both_apis_have_stay_native(client: TestClient, fake: FakeRuntime) -> None:
    native = client.post(f"/containers/{ID}/kill")
    assert native.status_code == 200 and native.json()["id"] == ID  # the native shape
    fake.exit.set_result(make_record("exited"))  # what the SIGKILL does
    docker = client.post(f"/v1.47/containers/{ID}/kill")
    assert (docker.status_code, docker.content) == (204, b"")
    assert "api-version" not in native.headers


# -- create -----------------------------------------------------------------
def test_the_clis_full_body_maps_onto_a_created_container(
    client: TestClient, fake: FakeRuntime
) -> None:
    got = client.post("/v1.47/containers/create?name=x", json=CLI_BODY)
    assert (got.status_code, got.json()) == (201, {"Id": ID, "Warnings": []})
    [(op, (request,), _)] = fake.commands()
    assert (op, request.command) == ("create", ("echo", "hi"))
    assert request.start is False
    assert request.auto_remove is True
    assert request.name == "x"
    assert request.labels == {}


def test_create_maps_the_fields_we_implement(client: TestClient, fake: FakeRuntime) -> None:
    body: dict[str, Any] = {
        "Image": "docker.io/library/busybox:latest",
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo $A"],
        "Env": ["A=1", "B=2", "B"],
        "WorkingDir": "/tmp",
        "Hostname": "box",
        "User": "1000:1000",
        "Labels": {"k": "v"},
        "HostConfig": {
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["MKNOD"],
            "SecurityOpt": ["seccomp=unconfined"],
            "Memory": 64 << 20,
            "NanoCpus": 500_000_000,
            "PidsLimit": 20,
            "Ulimits": [{"Name": "nofile", "Soft": 64, "Hard": 64}],
        },
        "Tty": True,
        "OpenStdin": True,
        "StdinOnce": True,
    }
    body["HostConfig"]["ConsoleSize"] = [24, 80]
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [(_, (request,), _)] = fake.commands()
    assert request.command == ("/bin/sh", "-c", "echo $A")
    assert request.env == {"A": "1"}  # a bare name unsets
    assert (request.workdir, request.hostname) == ("/tmp", "box")
    security = request.security
    assert (security.user, security.cap_add, security.cap_drop) == (
        "1000:1000",
        ("NET_ADMIN",),
        ("MKNOD",),
    )
    assert (security.seccomp, request.labels) == ("unconfined", {"k": "v"})
    assert request.limits == Limits(memory_bytes=64 << 20, cpus=0.5, pids=20, nofile=64)
    assert (request.tty, request.stdin, request.stdin_once) == (True, True, True)
    assert request.tty_size == (24, 80)
    assert request.image == "busybox"


def test_mounts_and_a_read_only_root(client: TestClient, fake: FakeRuntime) -> None:
    host = {"Binds": ["/srv:/data:ro"], "Tmpfs": {"/run": "size=1m"}, "ReadonlyRootfs": True}
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": host}
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [(_, (request,), _)] = fake.commands()
    assert request.read_only is True
    assert [(m.type, m.target, m.read_only) for m in request.mounts] == [
        ("bind", "/data", True),
        ("tmpfs", "/run", False),
    ]
    bad = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["/a:relative"]}}
    got = client.post("/v1.47/containers/create", json=bad)
    assert got.status_code == 400 and "target" in got.json()["message"]


def test_limits_out_of_range_are_400s(client: TestClient, fake: FakeRuntime) -> None:
    body = {"Image": "host", "Cmd": ["true"], "HostConfig": {"Memory": 1024}}
    got = client.post("/v1.47/containers/create", json=body)
    assert got.status_code == 400 and "memory_bytes" in got.json()["message"]
    for ulimits, named in (
        ([{"Name": "nofile", "Soft": 1, "Hard": 1}], "nofile"),
        ([{"Name": "cores", "Soft": 0, "Hard": 0}], "ulimits.cores"),
        ([{"Name": "core", "Soft": 2, "Hard": 1}], "ulimits.core"),
    ):
        body["HostConfig"] = {"Ulimits": ulimits}
        got = client.post("/v1.47/containers/create", json=body)
        assert got.status_code == 400 and named in got.json()["message"], got.text
    assert fake.commands() == []


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ({"Sysctls": {"kernel.panic": "1"}}, "sysctls.kernel.panic"),
        ({"CpuShares": 1}, "cpu_shares"),
        ({"MemorySwappiness": 200}, "memory_swappiness"),
        ({"GroupAdd": ["a b"]}, "group_add"),
        ({"LogConfig": {"Type": "fluentd"}}, "logger: no log driver named 'fluentd'"),
        ({"UTSMode": "container:x"}, "UTSMode"),
    ],
)
def test_bad_options_are_400s_naming_them(
    client: TestClient, fake: FakeRuntime, host: dict[str, object], named: str
) -> None:
    body = {"Image": "host", "Cmd": ["true"], "HostConfig": host}
    got = client.post("/v1.47/containers/create", json=body)
    assert got.status_code == 400 and named in got.json()["message"], got.text
    assert fake.commands() == []


def test_options_reach_the_runtime(client: TestClient, fake: FakeRuntime) -> None:
    host = {"CpuShares": 256, "Sysctls": {"net.ipv4.ip_forward": "1"}, "PidMode": "host"}
    body = {"Image": "host", "Cmd": ["true"], "HostConfig": host, "StopSignal": "SIGINT"}
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [request] = [args[0] for name, args, _ in fake.calls if name == "create"]
    options = request.options
    assert options.tuning.cpu_shares == 256 and options.stop_signal == "SIGINT"
    assert dict(options.sysctls) == {"net.ipv4.ip_forward": "1"}
    assert options.host_namespaces == ("pid",)
    assert not options.no_healthcheck and options.healthcheck is None


def test_no_healthcheck_refuses_the_images_too(client: TestClient, fake: FakeRuntime) -> None:
    body = {"Image": "host", "Cmd": ["true"], "Healthcheck": {"Test": ["NONE"]}}
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [request] = [args[0] for name, args, _ in fake.calls if name == "create"]
    assert request.options.no_healthcheck and request.options.healthcheck is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"HostConfig": {"Privileged": True}}, "HostConfig.Privileged"),
        # PortBindings and ExposedPorts are mapped now (tests/api/test_docker_networks.py).
        ({"HostConfig": {"Dns": ["192.0.2.53"]}}, "HostConfig.Dns"),
        ({"HostConfig": {"ExtraHosts": ["db:192.0.2.1"]}}, "HostConfig.ExtraHosts"),
        ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "restart_policy.name"),
        (
            {"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}},
            "restart policy 'always'",
        ),
        ({"Healthcheck": {"Test": ["BOGUS", "true"]}}, "Healthcheck"),
        ({"HostConfig": {"SecurityOpt": ["apparmor=x"]}}, "SecurityOpt"),
    ],
)
def test_options_we_do_not_implement_are_refused(
    client: TestClient, fake: FakeRuntime, change: dict[str, Any], named: str
) -> None:
    got = client.post("/v1.47/containers/create", json={"Image": "host", "Cmd": ["true"], **change})
    assert got.status_code == 400
    assert named in got.json()["message"]
    assert fake.commands() == []


def test_an_unknown_image_is_a_404_and_a_pull_streams_docker_progress(
    client: TestClient, fake: FakeRuntime
) -> None:
    got = client.post("/v1.47/containers/create", json={"Image": "alpine", "Cmd": ["true"]})
    assert (got.status_code, got.json()["message"]) == (404, "No such image: alpine")
    fake.images.append(PULLED)
    fake.pull_steps = [
        PullProgress("0123456789ab", "Pulling fs layer", 0, 10),
        PullProgress("0123456789ab", "Downloading", 5, 10),
        PullProgress("0123456789ab", "Pull complete", 10, 10),
    ]
    auth = base64.urlsafe_b64encode(b'{"username": "me", "password": "pw"}').decode()
    pulled = client.post(
        "/v1.47/images/create?fromImage=localhost:5000/app&tag=1",
        headers={"X-Registry-Auth": auth},
    )
    assert pulled.status_code == 200
    lines = [json.loads(line) for line in pulled.text.splitlines()]
    assert lines[0] == {"status": "Pulling fs layer", "id": "0123456789ab", "progressDetail": {}}
    assert lines[1]["progressDetail"] == {"current": 5, "total": 10}
    assert lines[-1]["status"].endswith("Downloaded newer image for localhost:5000/app:1")
    [(_, args, _)] = [c for c in fake.calls if c[0] == "pull_image"]
    assert args[:2] == ("localhost:5000/app:1", Credentials("me", "pw"))
    fake.pull_error = NotFound("image", "localhost:5000/app:nope")
    failed = client.post("/v1.47/images/create?fromImage=localhost:5000/app&tag=nope")
    last = json.loads(failed.text.splitlines()[-1])
    assert last["error"] == "No such image: localhost:5000/app:nope"
    assert client.post("/v1.47/images/create?fromImage=a b").status_code == 400


def test_bad_values_are_400s_naming_the_field(client: TestClient) -> None:
    got = client.post(
        "/v1.47/containers/create", json={"Image": "host", "Cmd": ["true"], "WorkingDir": "rel"}
    )
    assert got.status_code == 400
    assert "workdir" in got.json()["message"]
    assert client.post("/v1.47/containers/create", json={"Image": "host"}).status_code == 400


def test_a_taken_name_is_a_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.errors["create"] = NameInUse("x")
    got = client.post("/v1.47/containers/create?name=x", json={"Image": "host", "Cmd": ["true"]})
    assert got.status_code == 409
    assert "already in use" in got.json()["message"]


# -- start, wait, stop, kill, remove ------------------------------------------
def test_start_releases_a_created_container(client: TestClient, fake: FakeRuntime) -> None:
    fake.record = make_record("created")
    assert client.post(f"/v1.47/containers/{ID}/start").status_code == 204
    assert fake.ops(reads=False) == ["start_container"]
    fake.record = make_record("running")
    already = client.post(f"/v1.47/containers/{ID}/start")
    assert (already.status_code, already.content) == (304, b"")
    fake.record = make_record("exited")
    restarted = client.post(f"/v1.47/containers/{ID}/start")
    assert restarted.status_code == 204
    assert fake.ops(reads=False) == ["start_container", "start_container", "start_container"]


def test_an_exec_failure_on_start_reads_as_docker_words_it(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.record = make_record("created")
    exited = make_record("exited", exit_code=127, error="exec nope: not found in PATH")
    fake.answers["start_container"] = exited
    got = client.post(f"/v1.47/containers/{ID}/start")
    assert got.status_code == 400
    assert "executable file not found" in got.json()["message"]


@pytest.mark.parametrize(
    ("status", "condition", "op"),
    [
        ("running", "not-running", "exit_future"),
        ("created", "next-exit", "next_exit_future"),
        ("exited", "next-exit", "next_exit_future"),
        ("running", "removed", "removal_future"),
    ],
)
def test_wait_conditions(
    client: TestClient, fake: FakeRuntime, status: str, condition: str, op: str
) -> None:
    fake.record = make_record(status)
    fake.exit.set_result(make_record("exited"))
    got = client.post(f"/v1.47/containers/{ID}/wait?condition={condition}")
    assert got.json() == {"StatusCode": 3}
    assert fake.ops(reads=False) == [op]


def test_wait_not_running_on_a_created_container_answers_at_once(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.record = make_record("created")
    assert client.post(f"/v1.47/containers/{ID}/wait").json() == {"StatusCode": 0}
    assert fake.ops(reads=False) == []


def test_wait_reports_a_lost_exit_status_as_an_error(client: TestClient, fake: FakeRuntime) -> None:
    fake.exit.set_result(make_record("exited", exit_code=None, error="status lost"))
    got = client.post(f"/v1.47/containers/{ID}/wait").json()
    assert got == {"StatusCode": -1, "Error": {"Message": "status lost"}}


def test_stop_kill_remove(client: TestClient, fake: FakeRuntime) -> None:
    assert client.post(f"/v1.47/containers/{ID}/stop?t=3").status_code == 204
    assert client.post(f"/v1.47/containers/{ID}/kill?signal=SIGTERM").status_code == 204
    assert client.delete(f"/v1.47/containers/{ID}?force=True&v=1").status_code == 204
    assert fake.commands() == [
        ("stop", (ID, 3.0), {"only_running": True}),
        ("kill", (ID, "SIGTERM"), {}),
        ("remove", (ID,), {"force": True, "volumes": True}),
    ]
    fake.record = make_record("exited")
    assert client.post(f"/v1.47/containers/{ID}/stop").status_code == 304


def test_a_sigkill_answers_once_the_exit_is_recorded(client: TestClient, fake: FakeRuntime) -> None:
    threading.Timer(0.2, fake.exit.set_result, [make_record("exited")]).start()
    assert client.post(f"/v1.47/containers/{ID}/kill").status_code == 204
    assert fake.exit.done()  # docker-py inspects right after and wants it exited
    assert fake.ops(reads=False) == ["kill", "exit_future"]


def test_other_signals_and_a_slow_death_do_not_hold_the_kill(
    client: TestClient, fake: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.post(f"/v1.47/containers/{ID}/kill?signal=SIGUSR1").status_code == 204
    assert fake.ops(reads=False) == ["kill"]
    monkeypatch.setattr(containers, "KILL_WAIT", 0.05)
    assert client.post(f"/v1.47/containers/{ID}/kill?signal=KILL").status_code == 204
    assert not fake.exit.done()


def test_kill_of_a_stopped_container_is_a_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.errors["kill"] = InvalidState("container is not running")
    got = client.post(f"/v1.47/containers/{ID}/kill")
    assert (got.status_code, got.json()) == (409, {"message": "container is not running"})


# -- inspect, list, logs --------------------------------------------------------
def test_inspect_has_what_clients_read(client: TestClient) -> None:
    body = client.get(f"/v1.47/containers/{ID}/json").json()
    assert body["Id"] == ID and body["Name"] == "/web"
    assert body["State"]["Status"] == "running" and body["State"]["Pid"] == 4242
    assert body["Config"]["Tty"] is False
    assert body["Config"]["Env"] == ["A=1"]
    assert body["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert (body["Path"], body["Args"]) == ("sleep", ["60"])


@pytest.mark.parametrize("flag", ["1", "true", "True"])
def test_list_all_and_filters(client: TestClient, flag: str) -> None:
    running = client.get("/v1.47/containers/json").json()
    assert [c["Names"] for c in running] == [["/web"]]
    everything = client.get(f"/v1.47/containers/json?all={flag}").json()
    assert [c["State"] for c in everything] == ["running", "exited"]
    assert everything[1]["Status"].startswith("Exited (3) ")
    filters = json.dumps({"status": ["exited"]})
    assert len(client.get("/v1.47/containers/json", params={"filters": filters}).json()) == 1
    labelled = json.dumps({"label": ["k=v"]})
    got = client.get("/v1.47/containers/json", params={"all": 1, "filters": labelled}).json()
    assert [c["Id"] for c in got] == [ID]
    bad = client.get("/v1.47/containers/json", params={"filters": '{"network": ["x"]}'})
    assert bad.status_code == 400


def test_logs_are_framed_without_a_tty(client: TestClient, fake: FakeRuntime) -> None:
    got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1&stderr=1&tail=5")
    assert got.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert got.content == (
        struct.pack(">BxxxL", 1, 4) + b"out\n" + struct.pack(">BxxxL", 2, 4) + b"err\n"
    )
    [(_, args, kwargs)] = fake.commands()
    assert args == (ID, ["stdout", "stderr"]) and kwargs["tail"] == 5


def test_logs_send_a_frame_per_line(client: TestClient, fake: FakeRuntime) -> None:
    """docker-py's logs(stream=True) yields a frame at a time; clients expect lines."""
    fake.chunks = [("stdout", b"hello\nworld\npartial")]
    got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1")
    assert got.content == b"".join(
        struct.pack(">BxxxL", 1, len(line)) + line for line in (b"hello\n", b"world\n", b"partial")
    )


def test_swarm_answers_as_an_engine_outside_a_swarm(client: TestClient) -> None:
    """503 for inspect and leave (docker-py's leave_swarm(force=True) counts it as
    done), 501 for init and join."""
    for method, path, status in [
        ("GET", "/swarm", 503),
        ("POST", "/swarm/leave?force=True", 503),
        ("POST", "/swarm/init", 501),
        ("POST", "/swarm/join", 501),
    ]:
        got = client.request(method, f"/v1.47{path}")
        assert got.status_code == status and got.json()["message"], path
    assert "not part of a swarm" in client.post("/v1.47/swarm/leave").json()["message"]


def test_logs_bad_options_are_400s(client: TestClient, fake: FakeRuntime) -> None:
    assert client.get(f"/v1.47/containers/{ID}/logs").status_code == 400  # no stream
    for query in ("tail=x", "since=x", "until=yesterday", "since=-1", "timestamps=maybe"):
        got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1&{query}")
        assert got.status_code == 400, query
    assert "log_lines" not in fake.ops(reads=False)


def test_logs_with_timestamps_frame_each_line_after_its_time(
    client: TestClient, fake: FakeRuntime
) -> None:
    got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1&stderr=1&timestamps=1&tail=2")
    assert got.status_code == 200
    lines = [
        (1, b"2026-11-29T05:00:00.123456789Z out\n"),
        (2, b"2026-11-29T05:00:00.500000000Z err\n"),
        (1, b"2026-11-29T05:00:01.500000000Z last\n"),
    ]
    assert got.content == b"".join(struct.pack(">BxxxL", n, len(p)) + p for n, p in lines)
    [(op, args, kwargs)] = fake.commands()
    assert (op, args) == ("log_lines", (ID, ["stdout", "stderr"]))
    assert kwargs == {"tail": 2, "follow": False, "since": None, "until": None, "heartbeat": True}


def test_logs_with_timestamps_and_a_tty_are_raw(client: TestClient, fake: FakeRuntime) -> None:
    fake.record = make_record(spec=dataclasses.replace(fake.record.spec, tty=True))
    got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1&timestamps=true")
    assert got.headers["content-type"] == "application/vnd.docker.raw-stream"
    assert got.content == (
        b"2026-11-29T05:00:00.123456789Z out\n2026-11-29T05:00:01.500000000Z last\n"
    )


@pytest.mark.parametrize(
    ("query", "since", "until"),
    [
        # What the CLI sends (`docker logs --since 2026-11-29T05:00:00.5Z`).
        ("since=1795928400.500000000", T0_NS + 5 * 10**8, None),
        ("since=1795928400", T0_NS, None),  # docker-py's int
        ("until=2026-11-29T05:00:01.5Z", None, T1_NS),
        ("since=0&until=", None, None),  # unset, as Docker reads them
    ],
)
def test_logs_since_and_until_reach_the_runtime_in_ns(
    client: TestClient, fake: FakeRuntime, query: str, since: int | None, until: int | None
) -> None:
    fake.record = make_record("exited")
    got = client.get(f"/v1.47/containers/{ID}/logs?stdout=1&{query}")
    assert got.status_code == 200
    [(op, _, kwargs)] = fake.commands()
    if since is None and until is None:
        assert op == "log_chunks"  # nothing to date: the plain copy
        return
    assert op == "log_lines"
    assert (kwargs["since"], kwargs["until"]) == (since, until)
    # No timestamps asked for: the lines as they are.
    assert got.content == b"".join(
        struct.pack(">BxxxL", 1, len(p)) + p for p in (b"out\n", b"last\n")
    )


def test_images(client: TestClient) -> None:
    listed = client.get("/v1.47/images/json").json()
    assert [i["RepoTags"] for i in listed] == [["host:latest"], ["busybox:latest"]]
    assert listed[1]["Size"] == 1000
    got = client.get("/v1.47/images/docker.io/library/busybox:latest/json")
    assert (got.status_code, got.json()["RepoTags"]) == (200, ["busybox:latest"])
    assert client.get("/v1.47/images/alpine/json").status_code == 404


def test_a_pulled_image_inspect_history_tag_delete(client: TestClient, fake: FakeRuntime) -> None:
    fake.images.append(PULLED)
    got = client.get("/v1.47/images/localhost:5000/app:1/json").json()
    assert (got["Id"], got["RepoTags"], got["RepoDigests"]) == (
        PULLED_ID,
        ["localhost:5000/app:1"],
        list(PULLED.digests),
    )
    assert got["RootFS"]["Layers"] == list(PULLED.diff_ids)
    assert got["Config"]["Entrypoint"] == ["/bin/sh", "-c"] and got["Config"]["Cmd"] == ["echo hi"]
    assert got["Config"]["ExposedPorts"] == {"80/tcp": {}} and got["Config"]["WorkingDir"] == "/w"
    history = client.get(f"/v1.47/images/{PULLED_ID}/history").json()
    assert [h["Id"] for h in history] == [PULLED_ID, "<missing>"]
    tagged = client.post("/v1.47/images/localhost:5000/app:1/tag?repo=mine/app&tag=2")
    assert tagged.status_code == 201
    assert ("tag_image", ("localhost:5000/app:1", "mine/app:2"), {}) in fake.calls
    deleted = client.delete("/v1.47/images/busybox?force=1")
    assert deleted.json()[0] == {"Untagged": "busybox:latest"}
    assert ("delete_image", ("busybox", True), {}) in fake.calls
    assert client.post("/v1.47/images/prune").json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    dist = client.get("/v1.47/distribution/localhost:5000/app:1/json").json()
    assert dist["Descriptor"]["digest"].startswith("sha256:")
    assert dist["Platforms"] == [{"architecture": "amd64", "os": "linux"}]


def test_create_on_a_pulled_image_keeps_entrypoint_and_cmd_apart(
    client: TestClient, fake: FakeRuntime
) -> None:
    fake.images.append(PULLED)
    body: dict[str, Any] = {"Image": "localhost:5000/app:1", "Cmd": None, "Entrypoint": None}
    assert client.post("/v1.47/containers/create", json=body).status_code == 201
    [(op, (request,), _)] = [c for c in fake.commands() if c[0] == "create"]
    assert (request.command, request.entrypoint, request.image) == (
        (),
        None,
        "localhost:5000/app:1",
    )
    body = {"Image": "localhost:5000/app:1", "Cmd": ["x"], "Entrypoint": [""]}
    client.post("/v1.47/containers/create", json=body)
    request = [c for c in fake.commands() if c[0] == "create"][-1][1][0]
    assert (request.command, request.entrypoint) == (("x",), ())


# -- exec -------------------------------------------------------------------------
def test_exec_create_refuses_what_it_cannot_do(client: TestClient, fake: FakeRuntime) -> None:
    url = f"/v1.47/containers/{ID}/exec"
    got = client.post(url, json={"Cmd": ["true"], "Privileged": True})
    assert got.status_code == 400 and "Privileged" in got.json()["message"]
    fake.record = make_record("exited")
    assert client.post(url, json={"Cmd": ["true"]}).status_code == 409
    assert client.get("/v1.47/exec/nope/json").status_code == 404


def test_exec_create_then_inspect_before_start(client: TestClient) -> None:
    body = {"Cmd": ["sh"], "AttachStdout": True, "Container": ID, "Detach": False}
    created = client.post(f"/v1.47/containers/{ID}/exec", json=body)
    assert created.status_code == 201
    exec_id = created.json()["Id"]
    got = client.get(f"/v1.47/exec/{exec_id}/json").json()
    assert (got["Running"], got["ExitCode"], got["ContainerID"]) == (False, None, ID)
    assert got["ProcessConfig"]["entrypoint"] == "sh"
    # Without an upgrade, only a detached start is possible.
    assert client.post(f"/v1.47/exec/{exec_id}/start", json={"Detach": False}).status_code == 400


def test_exec_start_detached_starts_the_recorded_exec_once(
    client: TestClient, fake: FakeRuntime
) -> None:
    body = {"Cmd": ["sleep", "9"], "AttachStdout": True}
    exec_id = client.post(f"/v1.47/containers/{ID}/exec", json=body).json()["Id"]
    assert fake.execs[exec_id].status == "created"
    start = f"/v1.47/exec/{exec_id}/start"
    assert client.post(start, json={"Detach": True, "ConsoleSize": [24, 80]}).status_code == 200
    assert ("start_exec", (exec_id, (24, 80)), {}) in fake.calls
    got = client.get(f"/v1.47/exec/{exec_id}/json").json()
    assert (got["Running"], got["Pid"], got["OpenStdout"]) == (True, 77, True)
    again = client.post(start, json={"Detach": True})
    assert again.status_code == 409 and "already started" in again.json()["message"]
    missing = client.post("/v1.47/exec/nope/start", json={"Detach": True})
    assert missing.status_code == 404
    assert missing.json() == {"message": "No such exec instance: nope"}


@pytest.mark.parametrize(
    ("exit_code", "error", "shown"),
    [(127, "exec: 'nope': not found", 126), (125, "chdir /x: ENOENT", 126), (127, None, 127)],
)
def test_an_exec_that_could_not_start_ends_with_126(
    client: TestClient, fake: FakeRuntime, exit_code: int, error: str | None, shown: int
) -> None:
    """Docker's exit code for an exec its runtime failed to start; a command's
    own 127 (error unset) stays as it is."""
    body = {"Cmd": ["nope"], "AttachStdout": True}
    exec_id = client.post(f"/v1.47/containers/{ID}/exec", json=body).json()["Id"]
    fake.execs[exec_id] = dataclasses.replace(
        fake.execs[exec_id], status=Status.exited, exit_code=exit_code, error=error
    )
    assert client.get(f"/v1.47/exec/{exec_id}/json").json()["ExitCode"] == shown


def test_exec_start_answers_101_before_the_process_starts(
    client: TestClient, fake: FakeRuntime
) -> None:
    """docker-py reads the 101 through a buffered reader and then the bare
    socket: output sent before the 101 would be lost, so the process must
    start only after it.  A container that exits in between proves the
    order: its refusal comes down the accepted stream, not as a 409."""
    body = {"Cmd": ["echo", "o"], "AttachStdout": True, "AttachStderr": True}
    exec_id = client.post(f"/v1.47/containers/{ID}/exec", json=body).json()["Id"]

    fake.calls.clear()
    fake.errors["start_exec"] = InvalidState(f"container {ID} is not running")
    with client.websocket_connect(f"/v1.47/exec/{exec_id}/start") as ws:
        got = ws.receive_bytes()
    assert fake.ops(reads=False) == ["start_exec"]
    assert got[:8] == struct.pack(">BxxxL", 2, len(got) - 8)
    assert b"is not running" in got[8:]


def test_exec_start_refuses_before_the_101_what_it_can(
    client: TestClient, fake: FakeRuntime
) -> None:
    exec_id = client.post(f"/v1.47/containers/{ID}/exec", json={"Cmd": ["true"]}).json()["Id"]
    fake.record = make_record("exited")
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(f"/v1.47/exec/{exec_id}/start"):
            pass
    assert denied.value.status_code == 409 and "not running" in denied.value.json()["message"]


def test_prune_removes_the_exited_ones(client: TestClient, fake: FakeRuntime) -> None:
    fake.writable = 4096  # SpaceReclaimed: the bytes of their writable layers, as Docker
    got = client.post("/v1.47/containers/prune")
    assert got.json() == {"ContainersDeleted": ["f" * 64], "SpaceReclaimed": 4096}
    # Not forced: ``force`` is left at its default, False.
    assert fake.commands() == [("remove", ("f" * 64,), {})]
    labelled = client.post("/v1.47/containers/prune", params={"filters": '{"label": ["k"]}'})
    assert labelled.json()["ContainersDeleted"] == []
    for refused in ('{"name": ["x"]}', '{"until": ["someday"]}'):
        got = client.post("/v1.47/containers/prune", params={"filters": refused})
        assert got.status_code == 400
    # Created after the cut-off: kept.
    older = client.post("/v1.47/containers/prune", params={"filters": '{"until": ["946684800"]}'})
    assert older.json()["ContainersDeleted"] == []
    assert len(fake.commands()) == 1


def test_stats_one_shot(client: TestClient, fake: FakeRuntime) -> None:
    got = client.get(f"/v1.47/containers/{ID}/stats?stream=0&one-shot=1")
    [sample] = [json.loads(line) for line in got.text.splitlines()]
    assert sample["memory_stats"]["usage"] == 1000
    assert sample["memory_stats"]["max_usage"] == 2000
    assert sample["cpu_stats"]["cpu_usage"]["total_usage"] == 1_500_000_000
    assert sample["cpu_stats"]["system_cpu_usage"] > 0
    assert sample["pids_stats"]["current"] == 2
    assert sample["precpu_stats"]["system_cpu_usage"] == 0  # one shot: no previous
    assert fake.ops(reads=False) == ["stats"]


def test_stats_of_a_stopped_container_is_a_409(client: TestClient, fake: FakeRuntime) -> None:
    fake.errors["stats"] = InvalidState("container is not running")
    got = client.get(f"/v1.47/containers/{ID}/stats?stream=0")
    assert got.status_code == 409


def test_inspect_shows_health_and_the_options(client: TestClient, fake: FakeRuntime) -> None:
    fake.health = Health(HealthStatus.unhealthy, 3, (Probe("a", "b", 1, "no"),))
    body = client.get(f"/v1.47/containers/{ID}/json").json()
    assert body["State"]["Health"] == {
        "Status": "unhealthy",
        "FailingStreak": 3,
        "Log": [{"Start": "a", "End": "b", "ExitCode": 1, "Output": "no"}],
    }
    host = body["HostConfig"]
    assert (host["Isolation"], host["CgroupnsMode"], host["ShmSize"]) == ("", "private", 64 << 20)
    assert host["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert body["Config"]["StopSignal"] == "SIGTERM" and body["Mounts"] == []
    fake.health = None
    assert "Health" not in client.get(f"/v1.47/containers/{ID}/json").json()["State"]


def test_ps_shows_the_health(client: TestClient, fake: FakeRuntime) -> None:
    options = Options(healthcheck=Healthcheck(("true",)))
    spec = ContainerSpec(command=("sleep", "60"), hostname="h", options=options)
    fake.record = dataclasses.replace(fake.record, spec=spec)
    fake.health = Health(HealthStatus.healthy)
    [entry] = client.get("/v1.47/containers/json").json()
    assert entry["Status"].startswith("Up ") and entry["Status"].endswith(" (healthy)")
    fake.health = Health()
    [entry] = client.get("/v1.47/containers/json").json()
    assert entry["Status"].endswith(" (health: starting)")


def test_detach_keys_are_checked_where_they_are_given(client: TestClient) -> None:
    """Attach's ``detachKeys`` and the exec's (docker-py: ``detachKeys`` in the body)."""
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(f"/v1.47/containers/{ID}/attach?stdin=1&detachKeys=ctrl-1"):
            pass
    assert denied.value.status_code == 400 and "ctrl-1" in denied.value.json()["message"]
    url = f"/v1.47/containers/{ID}/exec"
    for key in ("DetachKeys", "detachKeys"):
        assert client.post(url, json={"Cmd": ["sh"], key: "ctrl-x"}).status_code == 201
        bad = client.post(url, json={"Cmd": ["sh"], key: "ctrl-"})
        assert bad.status_code == 400 and "detach keys" in bad.json()["message"]
