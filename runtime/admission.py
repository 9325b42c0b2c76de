"""``Admission``: whether a launch may go ahead, and what it holds while it does.

check_space   enough disk for its records and logs, and the exit reserve set aside
admit         fewer than ``max_containers`` created or running
lock          counting the active containers and inserting a new one are one step;
              deleting an image holds it too, so no container slips onto it
gate          launches hold it shared until the launcher has answered, a
              reconcile alone (runtime/gate.py)
"""

from __future__ import annotations

import shutil
import threading

from runtime.errors import LimitReached, RuntimeFailure, StorageFull
from runtime.gate import Gate
from runtime.layout import Layout
from runtime.records import CREATED, RUNNING, RecordStore
from runtime.reserve import Reserve

#: A launch needs room for its records and logs; below this, refuse it up front.
MIN_FREE_BYTES = 1 << 20


class Admission:
    def __init__(
        self, layout: Layout, records: RecordStore, reserve: Reserve, max_containers: int | None
    ) -> None:
        self.layout = layout
        self.records = records
        self.max_containers = max_containers
        # Counting the running containers and inserting a new one are one step.
        self.lock = threading.Lock()
        # Launches (shared) against reconciles (exclusive): see runtime/gate.py.
        self.gate = Gate()
        # Room to record exits in when the state dir fills up (runtime/reserve.py).
        self._reserve = reserve

    def check_space(self) -> None:
        state_dir = self.layout.state_dir
        try:
            free = shutil.disk_usage(state_dir).free
        except OSError as err:
            raise RuntimeFailure(f"the state dir {state_dir}: {err.strerror}") from err
        if free < MIN_FREE_BYTES:
            raise StorageFull(
                state_dir, f"{free} bytes free, a launch needs {MIN_FREE_BYTES >> 20} MiB"
            )
        # The reserve for recording exits was given up (the disk filled): it
        # is not free space.  Launch again only once it is set aside again
        # with room to spare, or the next exit would find the disk full.
        if not self._reserve.ensure(headroom=MIN_FREE_BYTES):
            raise StorageFull(
                state_dir,
                f"{free} bytes free, which the space held back for recording exits "
                f"needs first ({self._reserve.size >> 20} MiB + {MIN_FREE_BYTES >> 20} MiB)",
            )

    def admit(self) -> None:
        """LimitReached when ``max_containers`` are already created or running.

        The caller holds ``lock`` until its record is inserted."""
        if self.max_containers is None:
            return
        active = len(self.records.list(status=RUNNING)) + len(self.records.list(status=CREATED))
        if active >= self.max_containers:
            raise LimitReached(
                f"{active} containers are running; this service runs at most "
                f"{self.max_containers} (--max-containers)",
                retry_after=1,
            )
