"""Checkpoints and Merkle proofs as contract messages."""

from __future__ import annotations

from gateway.api.v1 import accountability_pb2
from gateway.store.audit_log import Checkpoint, ConsistencyProofData, InclusionProofData
from gateway.tlog.notes import format_time


def checkpoint_message(checkpoint: Checkpoint) -> accountability_pb2.Checkpoint:
    return accountability_pb2.Checkpoint(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        created_at=format_time(checkpoint.created_at),
        key_id=checkpoint.key_id,
        note=checkpoint.note,
    )


def inclusion_message(proof: InclusionProofData) -> accountability_pb2.InclusionProof:
    return accountability_pb2.InclusionProof(
        seq=proof.seq,
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        body=proof.body,
        path=proof.path,
        checkpoint=checkpoint_message(proof.checkpoint),
    )


def consistency_message(proof: ConsistencyProofData) -> accountability_pb2.ConsistencyProof:
    return accountability_pb2.ConsistencyProof(
        old_size=proof.old_size,
        new_size=proof.new_size,
        path=proof.path,
        old_checkpoint=checkpoint_message(proof.old_checkpoint),
        new_checkpoint=checkpoint_message(proof.new_checkpoint),
    )
