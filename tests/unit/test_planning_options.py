"""runtime/planning.py ``check_options``: what only the host can tell about
the options, and the combinations Docker refuses too."""

from __future__ import annotations

import os

import pytest

from runtime import planning
from runtime.options import Device, Options, Tuning
from runtime.planning import check_options
from runtime.spec import CreateRequest, InvalidField, Limits


def _check(options: Options, limits: Limits | None = None, hostname: str | None = None) -> None:
    limits = limits or Limits()
    check_options(CreateRequest(command=("true",), hostname=hostname, options=options), limits)


def test_sane_options_pass() -> None:
    cpu = min(os.sched_getaffinity(0))
    _check(
        Options(
            tuning=Tuning(cpuset_cpus=str(cpu), cpuset_mems="0", memory_swap_bytes=-1),
            devices=(Device("/dev/null", "/dev/mynull"),),
        )
    )
    _check(Options(tuning=Tuning(memory_swap_bytes=64 << 20)), Limits(memory_bytes=32 << 20))


def test_the_host_is_asked_only_for_the_cpusets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most launches set neither: no /sys read, no affinity call for them."""

    def asked() -> set[int]:
        raise AssertionError("asked the host for a cpuset nobody set")

    monkeypatch.setattr(planning, "_online_nodes", asked)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: asked())
    _check(Options(tuning=Tuning(memory_swap_bytes=-1)))
    with pytest.raises(AssertionError, match="nobody set"):
        _check(Options(tuning=Tuning(cpuset_mems="0")))


@pytest.mark.parametrize(
    ("options", "limits", "hostname", "field", "message"),
    [
        (Options(host_namespaces=("uts",)), Limits(), "x", "hostname", "host's UTS"),
        (Options(tuning=Tuning(cpuset_cpus="4095")), Limits(), None, "cpuset_cpus", "[4095]"),
        (Options(tuning=Tuning(cpuset_mems="63")), Limits(), None, "cpuset_mems", "[63]"),
        (
            Options(tuning=Tuning(cpu_quota_us=5000)),
            Limits(cpus=1),
            None,
            "cpu_quota_us",
            "conflicts with limits.cpus",
        ),
        (
            Options(tuning=Tuning(memory_swap_bytes=64 << 20)),
            Limits(),
            None,
            "memory_swap_bytes",
            "needs limits.memory_bytes",
        ),
        (
            Options(tuning=Tuning(memory_swap_bytes=16 << 20)),
            Limits(memory_bytes=32 << 20),
            None,
            "memory_swap_bytes",
            "at least limits.memory_bytes",
        ),
        (Options(devices=(Device("/dev/nope", "/dev/nope"),)), Limits(), None, "devices", "exist"),
        (
            Options(devices=(Device("/dev/shm", "/dev/x"),)),
            Limits(),
            None,
            "devices",
            "not a device node",
        ),
    ],
)
def test_what_the_host_cannot_give_is_refused(
    options: Options, limits: Limits, hostname: str | None, field: str, message: str
) -> None:
    with pytest.raises(InvalidField, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        _check(options, limits, hostname)
    assert e.value.field.endswith(field)
