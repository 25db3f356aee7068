"""The log's RFC 9162 Merkle tree; it lives in :mod:`gateway.tlog.merkle`, which the partner
side imports too, and is re-exported here for the store's modules."""

from gateway.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    TILE_HEIGHT,
    Frontier,
    Subtree,
    SubtreeHashes,
    Tile,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaves_subtree,
    node_hash,
    range_hash,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "TILE_HEIGHT",
    "Frontier",
    "Subtree",
    "SubtreeHashes",
    "Tile",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaves_subtree",
    "node_hash",
    "range_hash",
    "root_from_inclusion",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]
