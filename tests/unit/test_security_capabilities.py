"""runtime/security/capabilities.py and identity.py: names, Docker's rules, ids."""

from __future__ import annotations

import pytest

from runtime import libc
from runtime.security import capabilities, identity


def test_default_is_dockers_fourteen() -> None:
    assert len(capabilities.DEFAULT) == 14
    # The mask Docker's containers show as CapEff in /proc/self/status.
    assert capabilities.mask(capabilities.DEFAULT) == 0xA80425FB


def test_names_are_normalized() -> None:
    assert capabilities.normalize("cap_net_admin") == "NET_ADMIN"
    assert capabilities.normalize(" Sys_Time ") == "SYS_TIME"
    assert capabilities.normalize("all") == "ALL"
    with pytest.raises(ValueError, match="'CAP_FLY'"):
        capabilities.normalize("CAP_FLY")


def test_resolve_follows_docker() -> None:
    assert capabilities.resolve() == tuple(
        sorted(capabilities.DEFAULT, key=capabilities.CAPABILITIES.__getitem__)
    )
    added = capabilities.resolve(cap_add=["NET_ADMIN"], cap_drop=["CHOWN", "MKNOD"])
    assert "NET_ADMIN" in added and "CHOWN" not in added and "MKNOD" not in added
    assert capabilities.resolve(cap_drop=["ALL"]) == ()
    assert capabilities.resolve(cap_drop=["ALL"], cap_add=["kill"]) == ("KILL",)
    everything = capabilities.resolve(cap_add=["ALL"], cap_drop=["SYS_ADMIN"])
    assert len(everything) == len(capabilities.CAPABILITIES) - 1
    assert "SYS_ADMIN" not in everything


def test_drop_bounding_drops_all_but_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(libc, "prctl", lambda op, arg=0, *a: calls.append((op, arg)))
    capabilities.drop_bounding(capabilities.mask(["KILL", "CHOWN"]), last=40)
    dropped = [arg for op, arg in calls]
    assert all(op == libc.PR_CAPBSET_DROP for op, _ in calls)
    assert dropped == [n for n in range(41) if n not in (0, 5)]


def test_apply_root_keeps_set_user_gets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, int]] = []
    monkeypatch.setattr(libc, "capget", lambda: (0, 0xFFFF, 0))
    monkeypatch.setattr(libc, "capset", lambda **kw: calls.append(kw))
    capabilities.apply(0x1_0021, uid=0)  # bit 16 is kept only if held
    capabilities.apply(0x21, uid=1000)
    assert calls == [
        {"effective": 0x21, "permitted": 0x21, "inheritable": 0},
        {"effective": 0, "permitted": 0, "inheritable": 0},
    ]


def test_apply_with_what_is_held_known_ahead_needs_no_capget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # runtime/child.py passes the launcher's permitted set (or a user
    # namespace's full set); a non-root user keeps nothing either way.
    calls: list[dict[str, int]] = []

    def capget() -> tuple[int, int, int]:
        raise AssertionError("capget(2) called")

    monkeypatch.setattr(libc, "capget", capget)
    monkeypatch.setattr(libc, "capset", lambda **kw: calls.append(kw))
    capabilities.apply(0x1_0021, uid=0, held=0xFFFF)
    capabilities.apply(0x21, uid=1000)
    assert calls == [
        {"effective": 0x21, "permitted": 0x21, "inheritable": 0},
        {"effective": 0, "permitted": 0, "inheritable": 0},
    ]


@pytest.mark.parametrize(
    ("text", "uid", "gid"), [("0", 0, 0), ("1000", 1000, 1000), ("1000:50", 1000, 50)]
)
def test_user_parse(text: str, uid: int, gid: int) -> None:
    assert identity.parse(text) == identity.User(uid, gid)


@pytest.mark.parametrize("text", ["root", "1000:", ":5", "-1", "1:2:3", str(2**32)])
def test_user_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        identity.parse(text)
