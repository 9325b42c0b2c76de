"""``ContainerVerbs``: the ``Runtime`` facade's verbs on one existing
container (a base class, as ``files.FileVerbs``), each handed over to the
part that holds it:

    restart, rename, pause, unpause, update, top   lifecycle.Lifecycle
    kill, kill_many, stop                          signalling.Signaller (a
                          frozen container thawed first, its restart policy
                          told a user stopped it: restarts.Restarts)
    exit_future, removal_future, next_exit_future,
    waiter_count, wait                             exits.Exits
    health_of                                      health.HealthMonitor

Creating, listing and removing containers stay on the facade
(runtime/runtime.py): they compose several parts at once."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from runtime.exits import Exits
from runtime.health import Health, HealthMonitor
from runtime.lifecycle import Lifecycle, Top
from runtime.records import ContainerRecord
from runtime.restarts import Restarts
from runtime.selection import Selector
from runtime.signalling import KillResult, Signaller
from runtime.spec import Limits, RestartPolicy


class ContainerVerbs:
    lifecycle: Lifecycle
    signaller: Signaller
    restarts: Restarts
    exits: Exits
    health: HealthMonitor

    def get(self, ref: str) -> ContainerRecord:
        raise NotImplementedError  # the facade's

    # -- lifecycle verbs (runtime/lifecycle.py) --------------------------
    def restart(self, ref: str, timeout: float | None = None) -> ContainerRecord:
        self.restarts.user_stopped(self.get(ref))  # its policy must not race this start
        return self.lifecycle.restart(ref, timeout)

    def rename(self, ref: str, name: str) -> ContainerRecord:
        return self.lifecycle.rename(ref, name)

    def pause(self, ref: str) -> ContainerRecord:
        return self.lifecycle.pause(ref)

    def unpause(self, ref: str) -> ContainerRecord:
        return self.lifecycle.unpause(ref)

    def update(
        self,
        ref: str,
        limits: Limits,
        restart_policy: RestartPolicy | None = None,
        tuning: Mapping[str, int] | None = None,
    ) -> ContainerRecord:
        return self.lifecycle.update(ref, limits, restart_policy, tuning)

    def top(self, ref: str, ps_args: str | None = None) -> Top:
        return self.lifecycle.top(ref, ps_args)

    # -- signals --------------------------------------------------------
    def kill(self, ref: str, signal: str | int = "SIGKILL") -> ContainerRecord:
        self.lifecycle.thaw_for_signal(ref)
        self.restarts.user_stopped(self.get(ref))
        return self.signaller.kill(ref, signal)

    def kill_many(self, selector: Selector, signal: str | int = "SIGKILL") -> KillResult:
        result = self.signaller.kill_many(selector, signal)
        self.restarts.user_stopped_ids(result.killed)
        return result

    def stop(
        self, ref: str, timeout: float | None = None, *, only_running: bool = False
    ) -> ContainerRecord:
        self.lifecycle.thaw_for_signal(ref)
        self.restarts.user_stopped(self.get(ref))
        return self.signaller.stop(ref, timeout, only_running=only_running)

    # -- waiting --------------------------------------------------------
    def exit_future(self, ref: str) -> Future[ContainerRecord]:
        return self.exits.exit_future(ref)

    def removal_future(self, ref: str) -> Future[ContainerRecord]:
        return self.exits.removal_future(ref)

    def next_exit_future(self, ref: str) -> Future[ContainerRecord]:
        return self.exits.next_exit_future(ref)

    def waiter_count(self) -> int:
        return self.exits.waiter_count()

    def wait(self, ref: str, timeout: float | None = None) -> ContainerRecord:
        future = self.exit_future(ref)
        try:
            return future.result(timeout)
        except FutureTimeout:
            return self.get(ref)

    # -- health (runtime/health.py) --------------------------------------
    def health_of(self, ref: str) -> Health | None:
        """A container's health (``None`` without a health check or before its
        first look), from runtime/health.py."""
        return self.health.get(self.get(ref).id)
