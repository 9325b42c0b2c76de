"""runtime/warmpool.py over a recording launcher client: the templates set
before the connect, sent again only when an image change changes them,
an empty set that drains the pool, and a launcher that is away."""

from __future__ import annotations

from typing import Any

from runtime.errors import Unavailable
from runtime.launcher import protocol
from runtime.spec import ContainerSpec, RootfsPlan
from runtime.warmpool import WarmPool

HOST = ContainerSpec(command=("true",), hostname="pool", rootfs=RootfsPlan(root="/r"))
ALPINE = ContainerSpec(
    command=("true",), hostname="pool", image="alpine", rootfs=RootfsPlan(root="/r", lower="/a")
)


class Client:
    def __init__(self) -> None:
        self.pool: protocol.Pool | None = None
        self.sent: list[protocol.Pool] = []
        self.away = False

    def request(self, op: protocol.Pool) -> Any:
        if self.away:
            raise Unavailable("launcher", "gone")
        self.sent.append(op)


def sizes(pool: protocol.Pool | None) -> list[int]:
    assert pool is not None and pool.templates is not None
    return [t.size for t in pool.templates]


def test_templates_follow_the_images() -> None:
    now: list[tuple[ContainerSpec, int]] = [(HOST, 4)]
    client = Client()
    warm = WarmPool(lambda: list(now), client)  # type: ignore[arg-type]
    warm.start()
    assert sizes(client.pool) == [4] and client.sent == []  # the connect sends it
    warm.images_changed()  # another image: nothing the pool keeps
    assert client.sent == []
    now.append((ALPINE, 2))  # pulled
    warm.images_changed()
    assert [sizes(op) for op in client.sent] == [[4, 2]] and client.pool == client.sent[-1]
    now.pop()  # deleted
    warm.images_changed()
    assert [sizes(op) for op in client.sent] == [[4, 2], [4]]


def test_no_pool_then_an_empty_set_drains_and_an_away_launcher_gets_it_at_connect() -> None:
    now: list[tuple[ContainerSpec, int]] = []
    client = Client()
    warm = WarmPool(lambda: list(now), client)  # type: ignore[arg-type]
    warm.start()
    assert client.pool is None  # no pool asked for: nothing sent at the connect
    now.append((ALPINE, 1))
    client.away = True
    warm.images_changed()
    assert client.sent == [] and sizes(client.pool) == [1]
    client.away = False
    now.clear()
    warm.images_changed()
    assert client.sent == [protocol.Pool(())] and client.pool == protocol.Pool(())
