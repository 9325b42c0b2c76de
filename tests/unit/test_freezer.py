"""runtime/freezer.py on a fake cgroupfs: v1's freezer.state and v2's
cgroup.freeze, and finding a container's freezer cgroup."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups.fs import CgroupFs
from runtime.errors import Unavailable
from runtime.freezer import Freezer, locate


class KernelV1(CgroupFs):
    """freezer.state as the kernel plays it: FREEZING for ``lag`` reads."""

    def __init__(self, lag: int = 0) -> None:
        self.state = "THAWED"
        self.lag = lag
        self.writes: list[tuple[str, str]] = []

    def read(self, path: str) -> str:
        if self.state == "FREEZING":
            self.lag -= 1
            if self.lag < 0:
                self.state = "FROZEN"
            return "FREEZING\n"
        return self.state + "\n"

    def write(self, path: str, text: str) -> None:
        self.writes.append((path.rsplit("/", 1)[1], text))
        self.state = "FREEZING" if text == "FROZEN" and self.lag else text


class KernelV2(CgroupFs):
    def __init__(self, freezes: bool = True) -> None:
        self.frozen_flag = "0"
        self.freezes = freezes
        self.writes: list[tuple[str, str]] = []

    def read(self, path: str) -> str:
        assert path.endswith("cgroup.events")
        return f"populated 1\nfrozen {self.frozen_flag}\n"

    def write(self, path: str, text: str) -> None:
        self.writes.append((path.rsplit("/", 1)[1], text))
        if self.freezes or text == "0":
            self.frozen_flag = text


def test_v1_freeze_repeats_until_frozen_then_thaws() -> None:
    fs = KernelV1(lag=3)
    freezer = Freezer(fs, "v1", "/cg/freezer/c", sleep=lambda s: None)
    freezer.freeze()
    assert freezer.frozen()
    assert fs.writes[0] == ("freezer.state", "FROZEN")
    freezer.thaw()
    assert fs.writes[-1] == ("freezer.state", "THAWED")
    assert not freezer.frozen()


def test_v2_freeze_and_thaw() -> None:
    fs = KernelV2()
    freezer = Freezer(fs, "v2", "/cg/c", sleep=lambda s: None)
    assert not freezer.frozen()
    freezer.freeze()
    assert freezer.frozen() and fs.writes == [("cgroup.freeze", "1")]
    freezer.thaw()
    assert not freezer.frozen() and fs.writes[-1] == ("cgroup.freeze", "0")


def test_a_freeze_that_never_completes_is_undone_and_refused() -> None:
    fs = KernelV2(freezes=False)
    freezer = Freezer(fs, "v2", "/cg/c", timeout=0.01, sleep=lambda s: None)
    with pytest.raises(Unavailable, match="did not freeze"):
        freezer.freeze()
    assert fs.writes[-1] == ("cgroup.freeze", "0")


def test_a_removed_cgroup_is_not_frozen(tmp_path: Path) -> None:
    assert not Freezer(CgroupFs(), "v1", str(tmp_path / "gone")).frozen()
    assert not Freezer(CgroupFs(), "v2", str(tmp_path / "gone")).frozen()


def test_real_files_on_a_fake_tree(tmp_path: Path) -> None:
    (tmp_path / "freezer.state").write_text("THAWED")  # written in place, as cgroupfs
    freezer = Freezer(CgroupFs(), "v1", str(tmp_path), sleep=lambda s: None)
    freezer.freeze()  # a plain file reads back what was written: FROZEN
    assert (tmp_path / "freezer.state").read_text() == "FROZEN"


def _procfs(monkeypatch: pytest.MonkeyPatch, theirs: dict[str, str]) -> None:
    monkeypatch.setattr("runtime.procfs.cgroups", lambda pid: theirs)


def test_locate_prefers_the_v1_freezer_on_a_hybrid(monkeypatch: pytest.MonkeyPatch) -> None:
    _procfs(monkeypatch, {"freezer": "/mydocker-1/c", "": "/user.slice", "pids": "/mydocker-1/c"})
    mounts = {"freezer": "/sys/fs/cgroup/freezer", "": "/sys/fs/cgroup/unified"}
    own = {"freezer": "/", "": "/user.slice"}
    assert locate(1, own, mounts) == ("v1", "/sys/fs/cgroup/freezer/mydocker-1/c")


def test_locate_never_answers_the_services_own_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    _procfs(monkeypatch, {"freezer": "/", "": "/user.slice"})
    mounts = {"freezer": "/sys/fs/cgroup/freezer", "": "/sys/fs/cgroup/unified"}
    assert locate(1, {"freezer": "/", "": "/user.slice"}, mounts) is None
    _procfs(monkeypatch, {"": "/svc"})
    assert locate(1, {"": "/svc"}, {"": "/sys/fs/cgroup"}) is None


def test_locate_on_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    _procfs(monkeypatch, {"": "/mydocker-1/c"})
    assert locate(1, {"": "/"}, {"": "/sys/fs/cgroup"}) == ("v2", "/sys/fs/cgroup/mydocker-1/c")


def test_locate_on_v1_without_a_freezer_finds_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _procfs(monkeypatch, {"memory": "/mydocker-1/c", "": "/"})
    assert locate(1, {"memory": "/", "": "/"}, {"memory": "/m", "": "/u"}) is None
