"""Detection, /proc/self/cgroup parsing, parent naming, the manager factory."""

from __future__ import annotations

from runtime import cgroups
from tests.fakes.cgroupfs import FakeCgroupFs

HYBRID = """12:pids:/
4:memory:/process_api/abc
2:cpu,cpuacct:/user.slice
1:name=systemd:/init.scope
0::/init.scope
"""


def test_own_cgroups_parses_v1_and_v2_lines():
    own = cgroups.own_cgroups(HYBRID)
    assert own["memory"] == "/process_api/abc"
    assert own["cpu"] == own["cpuacct"] == "/user.slice"
    assert own["name=systemd"] == "/init.scope"
    assert own[""] == "/init.scope"


def test_parent_name_is_stable_and_differs_per_state_dir():
    a = cgroups.parent_name("/var/lib/mydocker")
    assert a == cgroups.parent_name("/var/lib/mydocker/")
    assert a != cgroups.parent_name("/tmp/other")
    assert a.startswith("mydocker-") and len(a) == len("mydocker-") + 12


def test_detect(tmp_path):
    v2 = FakeCgroupFs(str(tmp_path / "v2"), "v2")
    v2.make_root()
    v1 = FakeCgroupFs(str(tmp_path / "v1"), "v1")
    v1.make_root()
    (tmp_path / "v1" / "unified").mkdir()  # a hybrid's empty cgroup2 does not make it v2
    assert cgroups.detect(v2.root) == "v2"
    assert cgroups.detect(v1.root) == "v1"
    assert cgroups.detect(str(tmp_path / "nothing")) is None


def test_manager_picks_the_driver(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text(HYBRID)
    v1 = FakeCgroupFs(str(tmp_path / "v1"), "v1")
    v1.make_root()
    m = cgroups.manager("/state", v1.root, str(proc), v1)
    assert isinstance(m, cgroups.V1Manager)
    assert m.parents["memory"].endswith("/memory/process_api/abc/" + cgroups.parent_name("/state"))
    v2 = FakeCgroupFs(str(tmp_path / "v2"), "v2")
    v2.make_root()
    m2 = cgroups.manager("/state", v2.root, str(proc), v2)
    assert isinstance(m2, cgroups.V2Manager)
    assert cgroups.manager("/state", str(tmp_path / "none"), str(proc)) is None


def test_mkdir_tries_again_when_an_ancestor_vanished(tmp_path, monkeypatch):
    import os

    from runtime.cgroups.fs import CgroupFs

    real = os.makedirs
    calls = []

    def flaky(path, exist_ok=False):
        calls.append(path)
        if len(calls) == 1:  # another launcher's sweep removed the parent meanwhile
            raise FileNotFoundError(2, "No such file or directory", path)
        real(path, exist_ok=exist_ok)

    monkeypatch.setattr(os, "makedirs", flaky)
    CgroupFs().mkdir(str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir() and calls[0] == calls[1]  # tried again
