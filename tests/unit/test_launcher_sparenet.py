"""runtime/launcher/sparenet.py: which containers may take a network
namespace made ahead, and that each is taken once (making one needs root:
tests/e2e/test_isolation.py runs containers on them)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from runtime.launcher import sparenet
from runtime.network.attachment import Attachment
from runtime.spec import ContainerSpec, Security

PLAIN = ContainerSpec(command=("true",), hostname="h")
BRIDGED = Attachment("bridge", "bridge", bridge="br0", address="172.18.0.2", gateway="172.18.0.1")


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        (PLAIN, True),
        (dataclasses.replace(PLAIN, network=Attachment()), True),
        (dataclasses.replace(PLAIN, network=Attachment("host", "host")), False),
        (dataclasses.replace(PLAIN, network=BRIDGED), False),
        (dataclasses.replace(PLAIN, endpoints=(BRIDGED,)), False),
        (dataclasses.replace(PLAIN, security=Security(userns_host_id=100000)), False),
    ],
    ids=["default", "none", "host", "bridge", "a further network", "userns"],
)
def test_who_fits(spec: ContainerSpec, fits: bool) -> None:
    assert sparenet.fits(spec) is fits


def test_a_spare_is_made_once_taken_once_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []

    def make() -> int:
        made.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        return made[-1]

    monkeypatch.setattr(sparenet, "_made", make)
    spare = sparenet.SpareNet()
    assert spare.take(PLAIN) == -1 and spare.wants()  # none yet
    spare.make()
    spare.make()  # one at a time
    assert len(made) == 1 and not spare.wants()
    assert spare.take(dataclasses.replace(PLAIN, network=BRIDGED)) == -1  # kept for one that fits
    fd = spare.take(PLAIN)
    assert fd == made[0] and spare.take(PLAIN) == -1 and spare.wants()
    os.close(fd)
    spare.make()
    spare.close()
    with pytest.raises(OSError):
        os.fstat(made[1])  # closed with the launcher
    assert spare.take(PLAIN) == -1


def test_a_kernel_that_refuses_stops_the_making(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def refuse() -> int:
        calls.append(1)
        raise PermissionError(1, "unshare: Operation not permitted")

    monkeypatch.setattr(sparenet, "_made", refuse)
    spare = sparenet.SpareNet()
    spare.make()
    assert not spare.wants() and not spare.usable
    spare.make()
    assert calls == [1] and spare.take(PLAIN) == -1
