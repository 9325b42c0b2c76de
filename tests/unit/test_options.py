"""runtime/options.py: each option's own checks, naming the field."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runtime.options import (
    Device,
    Options,
    Tuning,
    Ulimit,
    check_sysctl,
    parse_cpuset,
)
from runtime.spec import ContainerSpec, InvalidField, from_dict, to_dict


def test_defaults_are_dockers() -> None:
    options = Options()
    assert (options.stop_signal, options.stop_timeout, options.log_driver) == (
        "SIGTERM",
        None,
        "json-file",
    )
    assert not options.tuning.needs_cgroup


@pytest.mark.parametrize(
    ("name", "shared"),
    [
        ("net.ipv4.ip_forward", ()),
        ("net.core.somaxconn", ("ipc", "uts", "pid")),
        ("kernel.shmmax", ()),
        ("kernel.msgmnb", ("uts",)),
        ("fs.mqueue.msg_max", ()),
        ("kernel.domainname", ("ipc",)),
    ],
)
def test_namespaced_sysctls_are_allowed(name: str, shared: tuple[str, ...]) -> None:
    check_sysctl(name, shared)


@pytest.mark.parametrize(
    ("name", "shared", "message"),
    [
        ("kernel.panic", (), "not namespaced"),
        ("vm.swappiness", (), "not namespaced"),
        ("kernel.shmmax", ("ipc",), "IPC namespace is the host's"),
        ("fs.mqueue.msg_max", ("ipc",), "IPC namespace is the host's"),
        ("kernel.domainname", ("uts",), "UTS namespace is the host's"),
        ("net/../../x", (), "not a sysctl name"),
        ("net", (), "not a sysctl name"),
    ],
)
def test_other_sysctls_are_refused_by_name(
    name: str, shared: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidField, match=message) as caught:
        check_sysctl(name, shared)
    assert caught.value.field == f"sysctls.{name}"


def test_cpuset_lists() -> None:
    assert parse_cpuset("0-2,4", "f") == {0, 1, 2, 4}
    for bad in ("", "a", "1-", "3-1", "0,,1"):
        with pytest.raises(InvalidField):
            parse_cpuset(bad, "f")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Ulimit("nofiles", 1, 1), "ulimits.nofiles"),
        (lambda: Ulimit("nproc", 10, 5), "ulimits.nproc"),
        (lambda: Ulimit("nproc", -1, 5), "ulimits.nproc"),
        (lambda: Ulimit("nproc", -2, -2), "ulimits.nproc"),
        (lambda: Device("/etc/passwd", "/dev/x"), "devices"),
        (lambda: Device("/dev/fuse", "/dev/../etc/x"), "devices"),
        (lambda: Device("/dev/fuse", "/dev/fuse", "rx"), "devices"),
        (lambda: Tuning(cpu_shares=1), "tuning.cpu_shares"),
        (lambda: Tuning(cpu_quota_us=999), "tuning.cpu_quota_us"),
        (lambda: Tuning(cpu_period_us=2_000_000), "tuning.cpu_period_us"),
        (lambda: Tuning(memory_swappiness=101), "tuning.memory_swappiness"),
        (lambda: Tuning(memory_swap_bytes=1000), "tuning.memory_swap_bytes"),
        (lambda: Tuning(cpuset_cpus="x"), "tuning.cpuset_cpus"),
        (lambda: Tuning(device_rules=("c 1:3",)), "tuning.device_rules"),
        (lambda: Options(stop_signal="SIGNOPE"), "stop_signal"),
        (lambda: Options(stop_timeout=4000), "stop_timeout"),
        (lambda: Options(host_namespaces=("net",)), "host_namespaces"),
        (lambda: Options(shm_size_bytes=10), "shm_size_bytes"),
        (lambda: Options(group_add=("bad name",)), "group_add"),
        (lambda: Options(group_add=(str(2**32),)), "group_add"),
        (lambda: Options(sysctls={"net.ipv4.ip_forward": "1\n2"}), "sysctls.net.ipv4.ip_forward"),
        (lambda: Options(ulimits=(Ulimit("nproc", 1, 1), Ulimit("nproc", 2, 2))), "ulimits"),
        (lambda: Options(log_driver="syslog"), "log_driver"),
    ],
)
def test_bad_values_name_their_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        make()
    assert caught.value.field == field


def test_unknown_log_driver_in_dockers_words() -> None:
    with pytest.raises(InvalidField, match="logger: no log driver named 'gelf' is registered"):
        Options(log_driver="gelf")


def test_the_spec_round_trips_its_options() -> None:
    options = Options(
        stop_signal="SIGUSR1",
        stop_timeout=3,
        host_namespaces=("pid",),
        group_add=("10", "audio"),
        ulimits=(Ulimit("core", -1, -1),),
        sysctls={"net.ipv4.ip_forward": "1"},
        devices=(Device("/dev/fuse", "/dev/fuse", "rw"),),
        tuning=Tuning(cpu_shares=512, cpuset_cpus="0", device_rules=("c 42:* rmw",)),
        log_driver="none",
    )
    spec = ContainerSpec(command=("true",), hostname="h", options=options)
    assert from_dict(ContainerSpec, to_dict(spec)) == spec
    # A record written before the options existed reads as the defaults.
    data = to_dict(spec)
    del data["options"]
    assert from_dict(ContainerSpec, data).options == Options()
    assert Tuning(cpu_shares=2).needs_cgroup and not Tuning(device_rules=("a *:* r",)).needs_cgroup


def test_given_options_are_checked() -> None:
    """Isolation: Linux has only ``default``; a driver name and the unset
    names are checked as names."""
    assert Options(isolation="default", volume_driver="local").isolation == "default"
    for bad in ({"isolation": "hyperv"}, {"volume_driver": "a b"}, {"env_unset": ("A=1",)}):
        with pytest.raises(InvalidField):
            Options(**bad)
