"""Where partners witness the accountability log (ExchangeService.GetCheckpointToWitness and
WitnessCheckpoint).

In C2SP ``tlog-witness`` the log calls its witnesses. Here the witnesses are the gateway's own
partners, which call the gateway and are never called by it, so the direction is reversed: a
partner asks for the newest checkpoint with a consistency proof from the size it saw last,
checks both against the log-signing keys it pins, and sends the checkpoint back cosigned
(C2SP ``tlog-cosignature``). A cosignature is checked against the calling partner's registered
Ed25519 token keys (``gateway.tlog.cosignature`` says why that key may sign both) and kept in
the checkpoint file, then in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from gateway.api.v1 import exchange_pb2
from gateway.crypto.keyids import key_pin
from gateway.server.auth import RegisteredPartner
from gateway.store.audit_log import AuditLog
from gateway.store.checkpoint_file import CheckpointFile
from gateway.store.log_witnesses import keep_cosignature, stored_root, witness_offer
from gateway.tlog.cosignature import CosignatureError, verify_cosignature
from gateway.tlog.notes import (
    SIGNATURE_DASH,
    CheckpointError,
    open_checkpoint,
    signature_lines,
    split_signature_line,
)

# A note with more than this many signature lines is not a cosigned checkpoint of ours.
MAX_SIGNATURE_LINES = 16
MAX_NOTE_BYTES = 8192


class WitnessRejected(Exception):
    """A witness call that cannot be served; ``code`` is its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class WitnessDesk:
    def __init__(
        self,
        log: AuditLog,
        engine: Engine,
        partners: Callable[[], Mapping[str, RegisteredPartner]],
        checkpoint_file: CheckpointFile | None,
    ) -> None:
        self._log = log
        self._engine = engine
        self._partners = partners
        self._file = checkpoint_file

    async def offer(self, old_size: int) -> exchange_pb2.CheckpointToWitness:
        return await asyncio.to_thread(self._offer, old_size)

    def _offer(self, old_size: int) -> exchange_pb2.CheckpointToWitness:
        offer = witness_offer(self._engine, old_size)
        if offer is None:
            # No checkpoint at all: an empty answer, which a partner that witnessed one takes
            # for the rollback it is.
            return exchange_pb2.CheckpointToWitness(old_size=old_size)
        if self._file is not None and self._log.attested(offer.checkpoint).key_id:
            # What this replica hands out is in its checkpoint file first; a note no trusted
            # key signed (a forged row) is handed out for the witness to refuse, never kept.
            self._file.append(offer.checkpoint.note)
        return exchange_pb2.CheckpointToWitness(
            note=offer.checkpoint.note,
            tree_size=offer.checkpoint.tree_size,
            old_size=old_size,
            consistency_path=offer.path,
        )

    async def cosign(self, partner_id: str, note: str) -> exchange_pb2.WitnessCheckpointResponse:
        return await asyncio.to_thread(self._cosign, partner_id, note)

    def _cosign(self, partner_id: str, note: str) -> exchange_pb2.WitnessCheckpointResponse:
        if len(note.encode("utf-8", "replace")) > MAX_NOTE_BYTES:
            raise _invalid(f"a cosigned note is at most {MAX_NOTE_BYTES} bytes")
        try:
            checkpoint = open_checkpoint(note, self._log.trusted_keys)
            lines = signature_lines(note)
        except CheckpointError as exc:
            raise _invalid(f"not a checkpoint of this log: {exc}") from None
        if len(lines) > MAX_SIGNATURE_LINES:
            raise _invalid("too many signature lines")
        root = stored_root(self._engine, checkpoint.tree_size)
        if root != checkpoint.root_hash:
            raise WitnessRejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the gateway holds no such checkpoint at tree size {checkpoint.tree_size}",
            )
        keys = _witness_keys(self._partners().get(partner_id))
        if not keys:
            raise WitnessRejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the calling partner has no active registered Ed25519 token key to check a "
                "cosignature with",
            )
        cosignature = None
        for line in lines:
            try:
                name, _ = split_signature_line(line)
                if name != partner_id:
                    continue
                cosignature = verify_cosignature(note, line, partner_id, keys, key_pin)
                break
            except CheckpointError:
                continue
        if cosignature is None:
            raise _invalid(
                f"no cosignature by {partner_id} with a registered Ed25519 token key verifies"
            )
        own = [line for line in lines if line.startswith(f"{SIGNATURE_DASH}{checkpoint.origin} ")]
        cosigned = checkpoint.text + "\n" + "".join(f"{line}\n" for line in own)
        cosigned += cosignature.line + "\n"
        if self._file is not None:
            self._file.append(cosigned)
        count = keep_cosignature(
            self._engine,
            checkpoint.tree_size,
            partner_id,
            cosignature.signed_at,
            cosignature.key_id,
            cosigned,
        )
        return exchange_pb2.WitnessCheckpointResponse(
            tree_size=checkpoint.tree_size, witnesses=count
        )


def _witness_keys(partner: RegisteredPartner | None) -> list[Ed25519PublicKey]:
    if partner is None or not partner.active:
        return []
    return [
        key
        for algorithm, key in partner.token_keys.values()
        if algorithm == "EdDSA" and isinstance(key, Ed25519PublicKey)
    ]


def _invalid(message: str) -> WitnessRejected:
    return WitnessRejected(grpc.StatusCode.INVALID_ARGUMENT, message)


__all__ = ["CosignatureError", "WitnessDesk", "WitnessRejected"]
