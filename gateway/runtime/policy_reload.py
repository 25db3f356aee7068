"""Hot reload of the policy in a running gateway.

A reload reads the policy directory, parses, checks and compiles it off the event loop, and
swaps it in only when it is valid and differs from the version in force. A broken policy
never replaces a working one: the gateway keeps serving the version it has, logs every
problem as ``file:line:column: message`` and counts the rejection.

Reloads come from SIGHUP (``ketenpoort serve``), from ``Gateway.reload_policy()``, and from
a watcher that polls the directory. An editor saving several files, or a deployment copying
a new set, produces a burst of changes; the watcher reloads only once the directory has
looked the same on two polls in a row, so it does not load a half-written set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gateway.broker.context import PolicyHolder
from gateway.core import CompiledPolicy, PolicyError, PolicyIssue
from gateway.policyfiles import PolicyDirectoryError, load_policy_dir, select_policy_files
from gateway.runtime.periodic import PeriodicTask
from gateway.server.metrics import Metrics

log = logging.getLogger("ketenpoort.policy")

# (relative path, inode, mtime_ns, size) of every policy file. The inode catches an editor
# that saves by renaming a new file over the old one within the clock's resolution.
FileStamp = tuple[str, int, int, int]
# Empty when the directory is missing or cannot be listed (a load would be rejected).
Snapshot = tuple[FileStamp, ...]

PolicyLoader = Callable[[Path], CompiledPolicy]
PolicyApplier = Callable[[CompiledPolicy], Awaitable[None]]


class ReloadResult(StrEnum):
    """The label values of ketenpoort_policy_reloads_total: a fixed set."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ReloadOutcome:
    result: ReloadResult
    version: str  # the version in force after the attempt
    previous: str  # the version in force before it
    problems: tuple[str, ...] = ()  # why a rejected policy was not loaded, one line each


def policy_snapshot(directory: Path) -> Snapshot:
    """What the policy files look like on disk, cheaply: names, inodes, times and sizes.

    The files `gateway.policyfiles.select_policy_files` picks, which `read_documents` reads:
    the policy files, and the misplaced YAML files that make a load fail (so adding or
    removing one triggers a reload that reports it). A file that vanishes while the
    directory is listed is simply left out; the next poll sees the settled state.
    """
    if not directory.is_dir():
        return ()
    try:
        files = select_policy_files(directory)
    except OSError:
        return ()
    stamps: list[FileStamp] = []
    for name, path in sorted({**files.policy, **files.misplaced}.items()):
        try:
            st = path.stat()
        except OSError:
            continue
        stamps.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


class SettledChange:
    """Decides when a change of the directory has settled: a snapshot that differs from the
    one last loaded, seen unchanged on two polls in a row (stable for one interval)."""

    def __init__(self, loaded: Snapshot) -> None:
        self.loaded = loaded
        self._pending: Snapshot | None = None

    def observe(self, snapshot: Snapshot) -> bool:
        """Record one poll; True when the directory should be reloaded now."""
        if snapshot == self.loaded:
            self._pending = None
            return False
        if snapshot != self._pending:
            self._pending = snapshot  # changed, or still changing: look again next poll
            return False
        self._pending = None
        return True


class PolicyReloader:
    """Reloads the policy directory into a `PolicyHolder`, on request or when it changes.

    `apply` swaps a new, valid policy in (and whatever the gateway derives from it); by
    default it only swaps the holder. Reloads never run concurrently.
    """

    def __init__(
        self,
        directory: Path,
        holder: PolicyHolder,
        metrics: Metrics,
        *,
        interval_s: float,
        apply: PolicyApplier | None = None,
        loaded: Snapshot = (),
        load: PolicyLoader = load_policy_dir,
    ) -> None:
        self.directory = directory
        self.interval_s = interval_s
        self._holder = holder
        self._metrics = metrics
        self._apply = apply or self._swap_holder
        self._load = load
        self._settled = SettledChange(loaded)
        self._lock = asyncio.Lock()
        # A look every interval, the first one interval after the start; stopping cancels a
        # reload in progress (the policy in force stays).
        self._watcher = PeriodicTask(
            "policy watcher",
            self._look,
            interval_s=interval_s,
            first_delay_s=interval_s,
            stop_mode="cancel",
        )
        for result in ReloadResult:  # every series exists from the start, at 0
            metrics.policy_reloads.labels(result.value)

    async def reload(self, trigger: str = "request") -> ReloadOutcome:
        """Read, check and compile the directory; swap it in if valid and new.

        `trigger` says in the log line what asked for the reload (SIGHUP, file change).
        """
        async with self._lock:
            # Taken before the files are read: a write during the read shows as a change
            # on the next poll, so it is loaded then rather than missed.
            snapshot = await asyncio.to_thread(policy_snapshot, self.directory)
            outcome = await self._reload(trigger)
            self._settled.loaded = snapshot
        self._metrics.policy_reload(outcome.result.value)
        return outcome

    def start(self) -> None:
        """Start watching the directory, unless the interval is 0."""
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def _reload(self, trigger: str) -> ReloadOutcome:
        previous = self._holder.current.version
        try:
            compiled = await asyncio.to_thread(self._load, self.directory)
        except PolicyError as exc:
            return self._rejected(trigger, previous, tuple(_describe(self.directory, exc)))
        except PolicyDirectoryError as exc:
            return self._rejected(trigger, previous, (str(exc),))
        except Exception as exc:  # a fault in the compiler must not stop the gateway serving
            log.exception("policy in %s could not be compiled", self.directory)
            return self._rejected(trigger, previous, (f"{type(exc).__name__}: {exc}",))
        if compiled.version == previous:
            self._metrics.policy_in_force(previous)
            log.info(
                "policy in %s reloaded (%s): unchanged, version %s",
                self.directory,
                trigger,
                previous,
            )
            return ReloadOutcome(ReloadResult.UNCHANGED, previous, previous)
        try:
            await self._apply(compiled)
        except Exception as exc:  # the old policy must keep serving whatever went wrong
            log.exception("policy in %s could not be put in force", self.directory)
            return self._rejected(trigger, previous, (f"{type(exc).__name__}: {exc}",))
        self._metrics.policy_in_force(compiled.version)
        log.info(
            "policy in %s reloaded (%s): version %s is in force (was %s)",
            self.directory,
            trigger,
            compiled.version,
            previous,
        )
        for warning in compiled.warnings:
            log.warning("%s", describe_issue(self.directory, warning))
        return ReloadOutcome(ReloadResult.APPLIED, compiled.version, previous)

    def _rejected(self, trigger: str, version: str, problems: tuple[str, ...]) -> ReloadOutcome:
        log.error(
            "policy in %s rejected (%s): %d problem(s); version %s stays in force",
            self.directory,
            trigger,
            len(problems),
            version,
        )
        for line in problems:
            log.error("%s", line)
        return ReloadOutcome(ReloadResult.REJECTED, version, version, problems)

    async def _swap_holder(self, compiled: CompiledPolicy) -> None:
        self._holder.swap(compiled)

    async def _look(self) -> None:
        try:
            snapshot = await asyncio.to_thread(policy_snapshot, self.directory)
            if self._settled.observe(snapshot):
                await self.reload("file change")
        except Exception:  # keep watching: the next change must still be picked up
            log.exception("watching the policy in %s failed once", self.directory)


def _describe(directory: Path, exc: PolicyError) -> list[str]:
    return [describe_issue(directory, issue) for issue in exc.issues]


def describe_issue(directory: Path, issue: PolicyIssue) -> str:
    """`dir/file:line:column: message`, and the hint on how to mend it, as one log line."""
    line = f"{directory / issue.file}:{issue.line}:{issue.column}: {issue.message}"
    return f"{line} (hint: {issue.hint})" if issue.hint else line
