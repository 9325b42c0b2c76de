"""runtime/gate.py: launches share the gate, a reconcile holds it alone."""

from __future__ import annotations

import threading
import time

from runtime.gate import Gate


def test_shared_holders_overlap() -> None:
    gate = Gate()
    inside = threading.Barrier(3, timeout=5)

    def hold() -> None:
        with gate.shared():
            inside.wait()  # all three inside at once, or this times out

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not inside.broken


def test_exclusive_waits_for_shared_and_blocks_new_shared() -> None:
    gate = Gate()
    events: list[str] = []
    release_first = threading.Event()
    exclusive_waiting = threading.Event()

    def first() -> None:
        with gate.shared():
            events.append("shared-1 in")
            release_first.wait(5)
            events.append("shared-1 out")

    def exclusive() -> None:
        exclusive_waiting.set()
        with gate.exclusive():
            events.append("exclusive")

    def second() -> None:
        with gate.shared():
            events.append("shared-2")

    t1 = threading.Thread(target=first)
    t1.start()
    while "shared-1 in" not in events:
        time.sleep(0.001)
    tx = threading.Thread(target=exclusive)
    tx.start()
    exclusive_waiting.wait(5)
    while not gate._exclusive_waiting:  # the exclusive holder is queued
        time.sleep(0.001)
    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.05)
    assert events == ["shared-1 in"]  # neither the exclusive nor a new shared got in
    release_first.set()
    for t in (t1, tx, t2):
        t.join(10)
    assert events == ["shared-1 in", "shared-1 out", "exclusive", "shared-2"]
