"""End-to-end fixtures: a real service (``python -m app``) on a free loopback
port with its own state dir, and an httpx client for it.

Every test in ``tests/e2e`` is marked ``root``: it runs real containers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.service import ROOT, Service, free_port
from tests.e2e.netservice import Namespace, NetService

__all__ = ["ROOT", "Service", "free_port", "logs", "run"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.root)


def _our_bridges() -> set[str]:
    """The service's bridges (``mydocker0``, ``mdk-*``) in this process's
    network namespace: the host's, where no test may make one."""
    return {n for n in os.listdir("/sys/class/net") if n == "mydocker0" or n.startswith("mdk-")}


def _our_tables() -> set[str]:
    """The service's nftables table (``inet mydocker``), if this network
    namespace has it."""
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return {line.strip() for line in listed.stdout.splitlines()} & {"table inet mydocker"}


@pytest.fixture(scope="module", autouse=True)
def _the_hosts_network_is_left_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """Network tests run their service in a namespace they make; a module
    whose service ran a bridge launch in the host's namespace fails here
    (a `docker run` there once made mydocker0 on the host, one more address
    for each fresh state dir), and so does one that left the service's
    firewall table there."""
    before, tables = _our_bridges(), _our_tables()
    yield
    made = sorted(_our_bridges() - before) + sorted(_our_tables() - tables)
    assert not made, f"{request.module.__name__} made {made} in the host's namespace"


def _start_service(tmp_path_factory: pytest.TempPathFactory, **kwargs: object) -> Service:
    state = tmp_path_factory.mktemp("svc") / "state"
    service = Service(state_dir=state, port=free_port(), **kwargs)  # type: ignore[arg-type]
    service.start()
    return service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service shared by the tests that do not restart or reconfigure it."""
    svc = _start_service(tmp_path_factory)
    yield svc
    svc.close()


@pytest.fixture
def own_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service of the test's own, which the test may stop and restart."""
    svc = Service(state_dir=tmp_path_factory.mktemp("svc") / "state", port=free_port())
    yield svc
    svc.close()


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


def run(client: httpx.Client, command: list[str], **spec: object) -> dict[str, Any]:
    """POST /containers?wait=true and return the finished container."""
    body = {"command": command, **spec}
    response = client.post("/containers", params={"wait": "true"}, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def logs(client: httpx.Client, ref: str, **params: Any) -> str:
    response = client.get(f"/containers/{ref}/logs", params=params)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture(scope="module")
def netns() -> Iterator[Namespace]:
    """A network namespace of the module's own: "the host" of network tests."""
    ns = Namespace()
    yield ns
    ns.close()


@pytest.fixture(scope="module")
def net_service(netns: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetService]:
    """A service inside ``netns``, reached over its unix socket (tests/e2e/netservice.py)."""
    service = NetService(netns, tmp_path_factory.mktemp("net") / "state")
    service.start()
    yield service
    service.close()


@pytest.fixture
def own_net_service(
    netns: Namespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NetService]:
    """A service of the test's own, to restart or crash (in the module's namespace)."""
    svc = NetService(netns, tmp_path_factory.mktemp("own-net") / "state")
    svc.start()
    try:
        yield svc
    finally:
        svc.close()
