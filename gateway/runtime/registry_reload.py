"""Hot reload of the partner registry in a running gateway.

The registry directory is polled like the policy directory; a change is read once it has
settled (two equal polls), checked as a whole, and joined with the policy in force. A broken
file never replaces a working registry: the gateway keeps the entries it has, logs the
problem and counts the rejection. A policy reload joins the new policy with the last good
entries, so a broken registry file does not hold up a policy change either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.core import CompiledPolicy
from gateway.registry.entries import RegistryEntry, RegistryError
from gateway.registry.files import read_registry, registry_snapshot
from gateway.runtime.periodic import PeriodicTask
from gateway.runtime.policy_reload import ReloadResult, SettledChange
from gateway.server.metrics import Metrics
from gateway.server.partners import PartnerRegistry, join_registry

__all__ = ["RegistryReloader"]

log = logging.getLogger("ketenpoort.registry")


class RegistryReloader:
    def __init__(
        self,
        directory: Path,
        policy: Callable[[], CompiledPolicy],
        apply: Callable[[PartnerRegistry], None],
        metrics: Metrics,
        *,
        interval_s: float,
    ) -> None:
        self._directory = directory
        self._policy = policy
        self._apply = apply
        self._metrics = metrics
        self._entries: Mapping[str, RegistryEntry] = {}
        self._change = SettledChange(())
        self._lock = asyncio.Lock()
        self._task = PeriodicTask(
            "registry watcher",
            self._look,
            interval_s=interval_s,
            first_delay_s=interval_s,
            stop_mode="cancel",
        )

    def load_initial(self) -> PartnerRegistry:
        """Read the registry at start-up; RegistryError stops the start."""
        snapshot = registry_snapshot(self._directory)
        self._entries = read_registry(self._directory)
        self._change = SettledChange(snapshot)
        return join_registry(self._policy(), self._entries)

    def joined_with(self, policy: CompiledPolicy) -> PartnerRegistry:
        """The last good entries joined with ``policy`` (for a policy reload)."""
        return join_registry(policy, self._entries)

    async def reload(self) -> ReloadResult:
        async with self._lock:
            snapshot = registry_snapshot(self._directory)
            try:
                entries = await asyncio.to_thread(read_registry, self._directory)
            except RegistryError as exc:
                log.error("registry not reloaded; the registry in force stays: %s", exc)
                self._metrics.registry_reload(ReloadResult.REJECTED.value)
                self._change.loaded = snapshot
                return ReloadResult.REJECTED
            self._change.loaded = snapshot
            if entries == self._entries:
                self._metrics.registry_reload(ReloadResult.UNCHANGED.value)
                return ReloadResult.UNCHANGED
            self._entries = entries
            self._apply(join_registry(self._policy(), entries))
            log.info("partner registry reloaded (%d entries)", len(entries))
            self._metrics.registry_reload(ReloadResult.APPLIED.value)
            return ReloadResult.APPLIED

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _look(self) -> None:
        try:
            if self._change.observe(registry_snapshot(self._directory)):
                await self.reload()
        except Exception:
            log.exception("registry watcher: reload failed")
