"""A launcher whose cgroup join is slowed down, for tests/e2e/test_limits.py.

``python -m tests.e2e.slow_join --state-dir DIR`` runs the real launcher
with ``Cgroup.add`` delayed by ``DELAY_SECONDS``: the child builds its root
while the launcher joins it (runtime/child.py, ``JOINED_BYTE``), so a child
that did not wait for the join would run its command long before it, and a
test reading the command's cgroups would see the launcher's.
"""

from __future__ import annotations

import sys
import time

from runtime.cgroups.base import Cgroup
from runtime.launcher import startup

DELAY_SECONDS = 0.3


def main(argv: list[str]) -> int:
    real_add = Cgroup.add

    def slow_add(self: Cgroup, pid: int) -> None:
        time.sleep(DELAY_SECONDS)
        real_add(self, pid)

    Cgroup.add = slow_add  # type: ignore[method-assign]
    return startup.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
