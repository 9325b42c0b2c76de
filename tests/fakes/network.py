"""Networks as the tests of several layers use them: one container's bridge
attachment; a host whose routes leave no default subnet free."""

from __future__ import annotations

from pathlib import Path

from runtime.layout import Layout
from runtime.network.attachment import Attachment, PortMapping
from runtime.network.ipam import DEFAULT_POOLS, Taken
from runtime.networks import Networks
from runtime.records import ContainerRecord, NetworkRecord, RecordStore
from tests.fakes.runtime import FakeRuntime

#: On network ``backend`` (10.1.0.0/24), one published port, alias ``db``.
ATTACHED = Attachment(
    mode="bridge",
    network="backend",
    bridge="mdk-x",
    address="10.1.0.2/24",
    gateway="10.1.0.1",
    mac="02:42:0a:01:00:02",
    veth="vethccccccccccc",
    ports=(PortMapping(80, 32768, "tcp", "127.0.0.1"),),
    aliases=("db",),
)


def exhausted_host(tmp_path: Path) -> Networks:
    """A real ``Networks`` (runtime/networks.py) on a host whose routes take
    every default subnet, the bridge's included: nothing is made on the host
    (its firewall and DNS start on first use, which a lookup never is)."""
    layout = Layout.of(str(tmp_path / "state"))
    Path(layout.containers).mkdir(parents=True)
    taken = [Taken(net, f"the host's route {net}") for net in DEFAULT_POOLS]
    return Networks(layout, RecordStore(str(tmp_path / "db")), routes=lambda: list(taken))


class OnAnExhaustedHost(FakeRuntime):
    """A fake runtime whose network lookups are ``exhausted_host``'s."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.real_networks = exhausted_host(tmp_path)

    def list_networks(self) -> list[NetworkRecord]:
        return self.real_networks.every()

    def get_network(self, ref: str) -> NetworkRecord:
        return self.real_networks.get(ref)

    def network_containers(self, name: str) -> list[ContainerRecord]:
        return self.real_networks.containers(name)
