"""A bounded set of the isolation, limits and reliability tests, run again on
a service without a warm pool (``--pool-size 0``: every launch cold).

The suite's services keep the default pool (``app/config.py``), so their
launches are mostly pooled; these tests keep the cold path, which a pool
miss takes, under test in the same run.  The whole suite can run cold too:
``MYDOCKER_POOL_SIZE=0 .venv/bin/python -m pytest --require-root tests/e2e``
(tests/e2e/conftest.py).  The tests are imported, so they run here with the
fixtures below (pytest collects a test by its name in this module).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Service, free_port, run
from tests.e2e.test_isolation import (  # noqa: F401 - collected here
    test_mounts_inside_do_not_reach_the_host,
    test_no_fds_leak_into_the_container,
    test_proc_is_fresh,
    test_signals_are_reset_before_exec,
    test_two_containers_do_not_share_namespaces,
)
from tests.e2e.test_limits import (  # noqa: F401 - collected here
    test_a_normal_run_reports_what_it_took,
    test_fork_bomb_is_held_by_pids_and_the_host_stays_responsive,
    test_memory_hog_is_oom_killed_and_says_so,
    test_timeout_kills_the_whole_container,
)
from tests.e2e.test_pool import pooled_children
from tests.e2e.test_restarts import (  # noqa: F401 - collected here
    test_api_kill9_then_restart_keeps_containers_and_their_real_exit_codes,
    test_launcher_kill9_buries_its_containers_and_kills_their_orphans,
)

COLD = ["--pool-size", "0"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(state_dir=tmp_path_factory.mktemp("cold") / "state", extra_args=COLD)
    svc.start()
    yield svc
    svc.close()


@pytest.fixture
def own_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(
        state_dir=tmp_path_factory.mktemp("cold") / "state", port=free_port(), extra_args=COLD
    )
    yield svc
    svc.close()


def test_no_pool_starts_no_zygote(service: Service) -> None:
    """The zygote (runtime/launcher/zygote.py) starts with the pool's first
    templates: a service without a pool keeps none."""
    with httpx.Client(base_url=service.url, timeout=60) as client:
        assert run(client, ["true"])["exit_code"] == 0  # the launcher runs
    launcher = service.launcher_pid()
    assert launcher is not None
    _children, zygotes = pooled_children(launcher)  # containers of other tests may run
    assert zygotes == set()
