"""What the launcher's warm pool keeps ready, as the API configures it.

    WarmPool
    ├── start()          the templates of the images the store holds, set on
    │                    the launcher client before it connects (it sends
    │                    them at every connect: a new launcher fills too)
    └── images_changed() after a pull, load, tag or delete: the templates
                         again, sent only when they differ (the launcher
                         drains the children of a changed template and
                         fills for the new one, runtime/launcher/pool.py)

An image named in ``--pool-images`` that the store does not hold at
start-up is kept warm from its pull on; a deleted one no longer.  The
templates themselves: runtime/planning.py ``pool_templates``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from runtime.errors import Unavailable
from runtime.launcher import protocol
from runtime.launcher.client import LauncherClient
from runtime.spec import ContainerSpec, to_dict

log = logging.getLogger("mydocker.runtime")

Templates = Callable[[], list[tuple[ContainerSpec, int]]]


class WarmPool:
    def __init__(self, templates: Templates, launcher: LauncherClient) -> None:
        """``templates``: the pool's templates now, with their counts
        (empty: no pool)."""
        self.templates = templates
        self.launcher = launcher
        self._lock = threading.Lock()
        self._sent: protocol.Pool | None = None

    def _op(self) -> protocol.Pool | None:
        pooled = [protocol.PoolTemplate(size, to_dict(spec)) for spec, size in self.templates()]
        return protocol.Pool(tuple(pooled)) if pooled else None

    def start(self) -> None:
        with self._lock:
            self._sent = self._op()
            self.launcher.pool = self._sent

    def images_changed(self) -> None:
        with self._lock:
            op = self._op()
            if op == self._sent:
                return
            self._sent = op
            # None would leave the launcher's pool as it is: an empty one drains it.
            self.launcher.pool = op if op is not None else protocol.Pool(())
            try:
                self.launcher.request(self.launcher.pool)
            except Unavailable:
                pass  # the next connect sends it
        log.info(
            "the warm pool's images changed: %d templates", len(op.templates or ()) if op else 0
        )
