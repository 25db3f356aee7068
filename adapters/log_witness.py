"""A partner system as a witness of the gateway's accountability log.

The partner keeps the newest checkpoint it has seen in a small state file of its choosing. Each
round (for example alongside each fetch of the gateway's key statement) it asks the gateway
for the newest checkpoint with a consistency proof from the size it saw
(``GetCheckpointToWitness``), checks the checkpoint's signature against the gateway's
log-signing keys it pins (the same pins its key statements are checked with), checks the
proof (RFC 9162), keeps the new checkpoint, and sends it back cosigned
(``WitnessCheckpoint``; C2SP ``tlog-cosignature``, with its Ed25519 token key under its
partner id). A checkpoint smaller than the one it saw, another root at the same size, or a
proof that does not check raises :class:`LogRolledBack` or :class:`LogRewritten` and leaves
the state file as it was: the partner never moves backwards, and every later round fails the
same way until the gateway's operators restore the log.

In C2SP ``tlog-witness`` the log calls its witnesses; here the witnesses are the gateway's
partners, which call the gateway and are never called by it, so the partner calls in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.api.v1 import exchange_pb2
from gateway.tlog.cosignature import add_cosignature, cosign
from gateway.tlog.merkle import verify_consistency
from gateway.tlog.notes import Checkpoint, CheckpointError, open_checkpoint

STATE_FORMAT = "ketenpoort-witness-state/1"

Offer = Callable[[int], Awaitable[exchange_pb2.CheckpointToWitness]]
Submit = Callable[[str], Awaitable[exchange_pb2.WitnessCheckpointResponse]]


class LogWitnessError(Exception):
    """The gateway's checkpoint cannot be witnessed: unsigned by a pinned key, another log,
    or a state file that cannot be read."""


class LogRolledBack(LogWitnessError):
    """The gateway's log is smaller than a checkpoint this partner witnessed before."""


class LogRewritten(LogWitnessError):
    """The gateway's newest checkpoint does not extend the one this partner witnessed."""


@dataclass(frozen=True, slots=True)
class Witnessed:
    """One round's outcome: the checkpoint now kept, the size kept before, and how many
    partners have cosigned that checkpoint at the gateway."""

    tree_size: int
    previous_size: int
    witnesses: int
    note: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LogWitness:
    """Witnesses one gateway's log, keeping its state in ``state_file``."""

    def __init__(
        self,
        state_file: Path,
        *,
        name: str,
        key: Ed25519PrivateKey,
        trusted: Callable[[], Sequence[Ed25519PublicKey]],
        origin: str,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``name`` is this partner's id (the cosignature's key name), ``key`` its Ed25519
        token key registered at the gateway, ``trusted()`` the gateway's log-signing public
        keys this partner pins, ``origin`` the gateway's log origin."""
        self.state_file = state_file
        self._name = name
        self._key = key
        self._trusted = trusted
        self._origin = origin
        self._clock = clock

    def seen(self) -> Checkpoint | None:
        """The newest checkpoint witnessed so far (from the state file), or None."""
        try:
            raw = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LogWitnessError(
                f"the witness state {self.state_file} cannot be read: {exc}"
            ) from None
        try:
            state = json.loads(raw)
            if state.get("format") != STATE_FORMAT:
                raise ValueError("unknown format")
            # It was checked against a pinned key when it was kept; the pins may have moved on.
            checkpoint = open_checkpoint(str(state["note"]), (), require_signature=False)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LogWitnessError(
                f"the witness state {self.state_file} is damaged ({exc}); it is not reset "
                "silently: restore it, or remove it to start witnessing afresh"
            ) from None
        return checkpoint

    async def witness(self, offer: Offer, submit: Submit) -> Witnessed:
        """One round: fetch, check, keep, cosign. Raises LogRolledBack / LogRewritten when
        the gateway's log went backwards or changed, LogWitnessError for other faults."""
        old = self.seen()
        old_size = old.tree_size if old is not None else 0
        offered = await offer(old_size)
        new = self._check(offered, old)
        if old is None or new.tree_size > old.tree_size:
            self._keep(new)
        line = cosign(new.note, self._name, self._key, self._clock())
        answer = await submit(add_cosignature(new.note, line))
        return Witnessed(new.tree_size, old_size, answer.witnesses, new.note)

    def _check(
        self, offered: exchange_pb2.CheckpointToWitness, old: Checkpoint | None
    ) -> Checkpoint:
        if not offered.note:
            if old is not None:
                raise LogRolledBack(
                    f"the gateway's log has no checkpoint at all, where this partner witnessed "
                    f"one of {old.tree_size} records on {old.created_at.isoformat()} (the "
                    "log was wiped or its checkpoints deleted)"
                )
            raise LogWitnessError("the gateway's log has no checkpoint yet")
        try:
            new = open_checkpoint(offered.note, self._trusted())
        except CheckpointError as exc:
            raise LogWitnessError(f"the gateway's checkpoint is not taken: {exc}") from None
        if new.origin != self._origin:
            raise LogWitnessError(
                f"the checkpoint is of log {new.origin!r}, not of {self._origin!r}"
            )
        if old is None:
            return new
        if new.tree_size < old.tree_size:
            raise LogRolledBack(
                f"the gateway's log went back: its newest checkpoint holds {new.tree_size} "
                f"records, fewer than the {old.tree_size} this partner witnessed on "
                f"{old.created_at.isoformat()} (the log was rolled back, cut or wiped)"
            )
        if new.tree_size == old.tree_size:
            if new.root_hash != old.root_hash:
                raise LogRewritten(
                    f"the gateway's checkpoint at tree size {new.tree_size} has another root "
                    "than the one this partner witnessed: the log was rewritten"
                )
            return new
        path = list(offered.consistency_path)
        if not verify_consistency(
            old.tree_size, new.tree_size, old.root_hash, new.root_hash, path
        ):
            raise LogRewritten(
                f"the gateway's checkpoint at tree size {new.tree_size} does not extend the "
                f"one at {old.tree_size} this partner witnessed: records were changed"
            )
        return new

    def _keep(self, checkpoint: Checkpoint) -> None:
        """Replace the state atomically and durably (a crash leaves the old or the new)."""
        directory = self.state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        document = {"format": STATE_FORMAT, "origin": checkpoint.origin, "note": checkpoint.note}
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.state_file)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
