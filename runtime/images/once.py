"""Run a job once per key while it is in flight: later callers wait for the first.

``Once.run(key, job)``: the first caller for ``key`` runs ``job`` in its own
thread; callers arriving while it runs block on the same future and get its
result or its exception.  Nothing is cached once the job ends: the caller's
job itself checks whether its result already exists (a blob on disk, an
unpacked layer), so a failed fetch can be retried by the next caller.

Used by the blob store (one download per digest) and the layer store (one
unpack per diff id), as containerd's content store does with its ingest
locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class Once(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future[T]] = {}

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._running

    def run(self, key: str, job: Callable[[], T]) -> T:
        with self._lock:
            future = self._running.get(key)
            owner = future is None
            if future is None:
                future = self._running[key] = Future()
        if not owner:
            return future.result()
        try:
            result = job()
        except BaseException as err:
            future.set_exception(err)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._lock:
                del self._running[key]
