"""``Gate``: many holders at once, or one alone (a readers-writer lock).

Launches hold it shared, from inserting their record until the launcher has
answered; a reconcile holds it alone, so it never sees a record whose launch
is still on its way to the launcher and takes it for lost.  A waiting
exclusive holder blocks new shared holders, so a stream of launches cannot
starve a reconcile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.leave_shared()

    def enter_shared(self) -> None:
        """``shared`` in two calls, for a holder that leaves on another thread
        (a launch awaited on the event loop leaves on the launcher's reader
        thread, once its reply is recorded)."""
        with self._cond:
            while self._exclusive or self._exclusive_waiting:
                self._cond.wait()
            self._shared += 1

    def leave_shared(self) -> None:
        with self._cond:
            self._shared -= 1
            if self._shared == 0:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._exclusive_waiting += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
