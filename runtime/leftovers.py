"""Cleaning up after containers whose launcher died.

A launcher killed with SIGKILL (or a reboot) cannot undo what it set up for
its containers.  When ``Runtime`` reconciles its records with a launcher (at
start-up, and after reconnecting to a new one) it calls every cleaner in
``CLEANERS`` with the state dir and the ids of the containers that launcher
still holds; a cleaner removes what belongs to any other container of that
state dir and must leave the held ones alone.

Features that leave something behind add their cleaner here: cgroups
(issue 4; the launcher's start-up removes them), the pid files of
runtime/rundir.py (``rundir.sweep``).  Roots and mounts (issue 3) need
none: every mount lives in the container's own mount namespace and goes
with its last process, and the overlay's upper dir is in the container's
dir, which DELETE removes.  A cleaner that fails is logged and the others
still run: a leftover is worth a log line, not a service that does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from runtime import rundir

log = logging.getLogger("mydocker.leftovers")

#: ``cleaner(state_dir, live_ids)``; what it returns is ignored.
Cleaner = Callable[[str, frozenset[str]], object]

CLEANERS: list[Cleaner] = [rundir.sweep]


def clean(
    state_dir: str, live: Collection[str], cleaners: Collection[Cleaner] | None = None
) -> int:
    """Run ``cleaners`` (default: ``CLEANERS``); return how many failed."""
    failed = 0
    keep = frozenset(live)
    for cleaner in CLEANERS if cleaners is None else cleaners:
        try:
            cleaner(state_dir, keep)
        except Exception:
            failed += 1
            name = getattr(cleaner, "__name__", repr(cleaner))
            log.exception("cleaning up leftovers with %s failed", name)
    return failed
