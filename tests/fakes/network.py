"""One container's bridge attachment, as the tests of several layers use it."""

from __future__ import annotations

from runtime.network.attachment import Attachment, PortMapping

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
