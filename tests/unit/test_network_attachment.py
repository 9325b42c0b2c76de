"""runtime/network/attachment.py, and where the spec and the child use it:
the /etc binds (ContainerSpec.all_mounts), the child's network steps, the
JSON form through the records and the launcher."""

from __future__ import annotations

import pytest

from runtime import child
from runtime.network.attachment import Attachment, PortMapping, veth_name
from runtime.spec import ContainerSpec, Mount, from_dict, to_dict

BRIDGED = Attachment(
    mode="bridge",
    network="a",
    bridge="mdk-a",
    address="10.1.0.2/24",
    gateway="10.1.0.1",
    mac="02:42:0a:01:00:02",
    veth="vethabc",
    ports=(PortMapping(80, 8080, "udp", "0.0.0.0"),),
    aliases=("db",),
    etc_dir="/state/containers/x/etc",
)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"container_port": 0}, "container_port"),
        ({"container_port": 1, "host_port": 70000}, "host_port"),
        ({"container_port": 1, "protocol": "sctp"}, "protocol"),
        ({"container_port": 1, "host_ip": "nope"}, "nope"),
    ],
)
def test_bad_port_mappings(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        PortMapping(**kwargs)  # type: ignore[arg-type]


def test_an_attachment_reads_its_address() -> None:
    assert (BRIDGED.ip, BRIDGED.prefix, BRIDGED.bridged) == ("10.1.0.2", 24, True)
    assert (Attachment().ip, Attachment().prefix, Attachment().bridged) == ("", 0, False)
    assert veth_name("0123456789abcdef" * 4) == "veth0123456789a"
    assert str(BRIDGED.ports[0]) == "0.0.0.0:8080->80/udp"


def test_the_spec_carries_it_through_json_and_binds_the_etc_files() -> None:
    user = Mount("tmpfs", "/data")
    spec = ContainerSpec(command=("true",), hostname="h", mounts=(user,), network=BRIDGED)
    assert from_dict(ContainerSpec, to_dict(spec)) == spec
    assert spec.all_mounts() == (
        user,
        Mount("bind", "/etc/resolv.conf", "/state/containers/x/etc/resolv.conf", True),
        Mount("bind", "/etc/hosts", "/state/containers/x/etc/hosts", True),
        Mount("bind", "/etc/hostname", "/state/containers/x/etc/hostname", True),
    )
    assert ContainerSpec(command=("true",), hostname="h", mounts=(user,)).all_mounts() == (user,)
    host = ContainerSpec(command=("true",), hostname="h", network=Attachment("host", "host"))
    assert host.all_mounts() == ()


def test_the_childs_steps_leave_every_network_to_the_launcher() -> None:
    # lo (tests/unit/test_launcher_spawn.py) and eth0 (plumbing.py) are the
    # launcher's, before the joined byte: the child has no network step.
    for net in (None, Attachment(), Attachment("host", "host"), BRIDGED):
        spec = ContainerSpec(command=("true",), hostname="h", network=net)
        names = [name for name, _ in child._steps(spec, child.ChildFds(3, 4, -1, -1, -1))]
        assert "bring up lo" not in names and names, net
