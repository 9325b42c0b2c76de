"""runtime/security/devices.py on a fake cgroupfs; userns ranges and maps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.runtime import Runtime
from runtime.security import devices, userns
from runtime.spec import SecurityRequest


def fake_devices_root(tmp_path: Path) -> Path:
    root = tmp_path / "devices"
    root.mkdir()
    (root / "devices.deny").write_text("")
    return root


def test_available_needs_the_v1_controller(tmp_path: Path) -> None:
    assert not devices.available(str(tmp_path))
    assert devices.available(str(fake_devices_root(tmp_path)))


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """(the cgroup's name, the file, the value) of every write."""
    writes: list[tuple[str, str, str]] = []
    original = devices._write

    def recording(path: str, value: str) -> None:
        writes.append((Path(path).parent.name, Path(path).name, value))
        original(path, value)

    monkeypatch.setattr(devices, "_write", recording)
    return writes


def test_create_denies_all_then_allows_dockers_list(
    tmp_path: Path, writes: list[tuple[str, str, str]]
) -> None:
    # The list is written once, into the parent's standard cgroup, whose
    # list a new cgroup starts with (v1); its containers are a mkdir each.
    root = fake_devices_root(tmp_path)
    parent = devices.parent_for("/srv/state")
    path = devices.create("abc", parent, root=str(root))
    assert path == str(root / parent / devices.STANDARD / "abc")
    assert devices.parent_for("/srv/state") != devices.parent_for("/srv/other")
    assert writes[0] == (devices.STANDARD, "devices.deny", "a")
    allowed = [value for _, name, value in writes[1:] if name == "devices.allow"]
    assert allowed == list(devices.ALLOWED)
    assert "c 1:3 rwm" in allowed and not any(
        rule.startswith("b ") and "r" in rule.split()[2] for rule in allowed
    )
    del writes[:]
    second = devices.create("def", parent, root=str(root))
    assert second == str(root / parent / devices.STANDARD / "def") and writes == []
    devices.join(path, 4242)
    assert (Path(path) / "cgroup.procs").read_text() == "4242"


def test_a_container_with_rules_of_its_own_gets_them_beside_the_standard(
    tmp_path: Path, writes: list[tuple[str, str, str]]
) -> None:
    # A parent can only narrow its children: the container's own rules
    # need a cgroup outside the standard one, with the whole list.
    root = fake_devices_root(tmp_path)
    parent = devices.parent_for("/srv/rules")
    path = devices.create("dev", parent, root=str(root), extra=("c 10:229 rwm",))
    assert path == str(root / parent / "dev")
    assert [(name, value) for cgroup, name, value in writes if cgroup == "dev"] == [
        ("devices.deny", "a"),
        *[("devices.allow", rule) for rule in (*devices.ALLOWED, "c 10:229 rwm")],
    ]


def test_a_standard_cgroup_with_another_list_is_never_rewritten(
    tmp_path: Path, writes: list[tuple[str, str, str]]
) -> None:
    # Narrowing it would narrow the containers running under it.
    root = fake_devices_root(tmp_path)
    parent = devices.parent_for("/srv/found")
    standard = root / parent / devices.STANDARD
    standard.mkdir(parents=True)
    (standard / "devices.list").write_text("a *:* rwm\n")
    path = devices.create("abc", parent, root=str(root))
    assert path == str(root / parent / "abc")  # beside it, the list written in
    assert all(cgroup == "abc" for cgroup, _, _ in writes) and len(writes) == 13
    # One that holds the list is used as it is.
    found = devices.parent_for("/srv/found-right")
    (root / found / devices.STANDARD).mkdir(parents=True)
    (root / found / devices.STANDARD / "devices.list").write_text("\n".join(devices.ALLOWED))
    del writes[:]
    assert devices.create("x", found, root=str(root)).endswith(f"{devices.STANDARD}/x")
    assert writes == []


def test_sweep_removes_only_empty_cgroups(tmp_path: Path) -> None:
    parent = tmp_path / "mydocker" / "x"
    (parent / "empty").mkdir(parents=True)
    (parent / "busy").mkdir()
    (parent / "busy" / "cgroup.procs").write_text("1")  # rmdir fails, as EBUSY would
    (parent / devices.STANDARD / "gone").mkdir(parents=True)  # a dead container's
    (parent / devices.STANDARD / "live").mkdir()
    (parent / devices.STANDARD / "live" / "cgroup.procs").write_text("2")
    assert devices.sweep("mydocker/x", root=str(tmp_path)) == 2
    assert sorted(p.name for p in parent.iterdir()) == ["busy", devices.STANDARD]
    assert [p.name for p in (parent / devices.STANDARD).iterdir()] == ["live"]
    assert devices.sweep("mydocker/none", root=str(tmp_path)) == 0


def test_remove_tolerates_a_missing_cgroup(tmp_path: Path) -> None:
    devices.remove(str(tmp_path / "gone"))
    empty = tmp_path / "empty"
    empty.mkdir()
    devices.remove(str(empty))
    assert not empty.exists()


def test_empty_parents_of_other_state_dirs_are_removed(tmp_path: Path) -> None:
    root = fake_devices_root(tmp_path)
    ours, idle, busy = (devices.parent_for(f"/srv/{n}") for n in ("ours", "idle", "busy"))
    for parent in (ours, idle, busy):
        (root / parent).mkdir(parents=True)
    (root / busy / "c1").mkdir()  # a launcher's container: rmdir(2) says EBUSY
    # An idle parent's empty standard cgroup goes with it; ours stays.
    for parent in (ours, idle):
        (root / parent / devices.STANDARD).mkdir()
    assert devices.remove_empty_parents(keep=ours, root=str(root)) == 1
    assert (root / ours).is_dir() and (root / busy).is_dir() and not (root / idle).exists()
    assert (root / ours / devices.STANDARD).is_dir()


def test_a_launcher_removes_its_parent_only_when_empty(tmp_path: Path) -> None:
    root = fake_devices_root(tmp_path)
    parent = devices.parent_for("/srv/state")
    (root / parent / devices.STANDARD / "abc").mkdir(parents=True)  # a container still there
    devices.remove_parent(parent, root=str(root))
    assert (root / parent / devices.STANDARD).is_dir()
    devices.remove(str(root / parent / devices.STANDARD / "abc"))
    devices.remove_parent(parent, root=str(root))
    assert not (root / parent).exists()


def test_parse_range() -> None:
    assert userns.parse_range("100000-165535") == (100000, 65536)
    for bad in ("100000", "a-b", "5-1", "0-65535", "1-4294967296"):
        with pytest.raises(ValueError):
            userns.parse_range(bad)


def test_write_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = tmp_path / "77"
    proc.mkdir()
    (proc / "uid_map").write_text("")
    (proc / "gid_map").write_text("")
    real_open = os.open
    monkeypatch.setattr(
        os,
        "open",
        lambda path, flags: real_open(path.replace("/proc", str(tmp_path)), flags),
    )
    userns.write_maps(77, 100000, 65536)
    assert (proc / "uid_map").read_text() == "0 100000 65536\n"
    assert (proc / "gid_map").read_text() == "0 100000 65536\n"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(str(tmp_path / "state"), userns_range=(200000, 65536), max_containers=1)
    yield rt
    rt.records.close()


def _asked(
    user: str | None,
    cap_add: list[str] | None,
    cap_drop: list[str] | None,
    seccomp: str,
    no_new_privileges: bool,
    userns: bool,
) -> SecurityRequest:
    return SecurityRequest(
        user, tuple(cap_add or ()), tuple(cap_drop or ()), seccomp, no_new_privileges, userns
    )


def test_security_spec_from_the_request(runtime: Runtime) -> None:
    sec = runtime.planner.security(
        _asked("1000:7", ["NET_ADMIN"], ["CHOWN"], "default", True, True)
    )
    assert (sec.uid, sec.gid, sec.userns_host_id) == (1000, 7, 200000)
    assert "NET_ADMIN" in sec.capabilities and "CHOWN" not in sec.capabilities
    plain = runtime.planner.security(_asked(None, None, None, "unconfined", False, False))
    assert plain.userns_host_id is None and plain.seccomp == "unconfined"
    assert not plain.no_new_privileges and plain.uid == plain.gid == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("70000", None, None, "default", True, True), "user"),
        (("bob", None, None, "default", True, False), "user"),
        ((None, ["FLY"], None, "default", True, False), "cap_add"),
        ((None, None, ["NOPE"], "default", True, False), "cap_drop"),
        ((None, None, None, "lax", True, False), "seccomp"),
    ],
)
def test_bad_security_requests_name_the_field(
    runtime: Runtime, args: tuple[object, ...], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        runtime.planner.security(_asked(*args))  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_dead_launchers_pool_cgroups_go_with_their_parent(tmp_path: Path, monkeypatch) -> None:
    """A launcher killed with SIGKILL leaves its warm pool's devices cgroups,
    empty once the children exit; another launcher's start-up removes them
    and then their parent, but not those of a live launcher."""
    monkeypatch.setattr("runtime.cgroups.base._alive", lambda pid: pid == 7)
    root = fake_devices_root(tmp_path)
    ours, dead, live = (devices.parent_for(f"/srv/{n}") for n in ("ours", "dead", "live"))
    for parent in (ours, dead, live):
        (root / parent).mkdir(parents=True)
    (root / dead / "pool-4-1").mkdir()
    (root / dead / "pool-4-2").mkdir()
    (root / live / "pool-7-1").mkdir()
    assert devices.remove_empty_parents(keep=ours, root=str(root)) == 1
    assert not (root / dead).exists()
    assert (root / live / "pool-7-1").is_dir()
