"""The Merkle tree against RFC 9162's recursive definitions, written out independently here."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 SUBPROOF."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"record {i}".encode()) for i in range(n)]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(
        b"\x01" + b"a" * 32 + b"b" * 32
    ).digest()
    assert merkle.Frontier().root() == hashlib.sha256(b"").digest()


def test_every_tree_up_to_70_leaves_matches_the_rfc() -> None:
    all_leaves = leaves(70)
    for n in range(1, 71):
        tree = all_leaves[:n]
        root = mth(tree)
        assert merkle.root_of(tree) == root
        subtree = merkle.leaves_subtree(tree)
        for i in range(n):
            proof = merkle.inclusion_proof(i, n, subtree)
            assert proof == path(i, tree)
            assert merkle.verify_inclusion(tree[i], i, n, proof, root)
        for old in range(1, n + 1):
            proof = merkle.consistency_proof(old, n, subtree)
            assert proof == subproof(old, tree, True)
            assert merkle.verify_consistency(old, n, mth(all_leaves[:old]), root, proof)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 600), st.data())
def test_wrong_proofs_are_refused(n: int, data: st.DataObject) -> None:
    tree = leaves(n)
    root = mth(tree)
    subtree = merkle.leaves_subtree(tree)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, n, subtree)
    assert merkle.verify_inclusion(tree[i], i, n, proof, root)
    other = merkle.leaf_hash(b"forged")
    assert not merkle.verify_inclusion(other, i, n, proof, root)
    if n > 1:
        assert not merkle.verify_inclusion(tree[i], (i + 1) % n, n, proof, root)
        assert not merkle.verify_inclusion(tree[i], i, n, proof[:-1], root)
        bent = [*proof]
        j = data.draw(st.integers(0, len(bent) - 1))
        bent[j] = bytes(32)
        assert not merkle.verify_inclusion(tree[i], i, n, bent, root)
    old = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(old, n, subtree)
    assert merkle.verify_consistency(old, n, mth(tree[:old]), root, proof)
    if old < n:
        # A tree that rewrote one of the old leaves is not an extension of the old one.
        rewritten = [*tree]
        rewritten[data.draw(st.integers(0, old - 1))] = other
        assert not merkle.verify_consistency(
            old, n, mth(tree[:old]), mth(rewritten), proof
        )


def test_frontier_hands_out_tiles_as_they_complete() -> None:
    tree = leaves(70_000)
    frontier = merkle.Frontier()
    tiles: list[merkle.Tile] = []
    for leaf in tree:
        frontier.append(leaf, tiles)
    assert [(t.level, t.idx) for t in tiles if t.level == 16] == [(16, 0)]
    assert len([t for t in tiles if t.level == 8]) == 70_000 // 256
    assert tiles[3].hash == mth(tree[3 * 256 : 4 * 256])
    sixteen = next(t for t in tiles if t.level == 16)
    assert sixteen.hash == mth(tree[: 1 << 16])
    restored = merkle.Frontier.decode(frontier.size, frontier.encode())
    assert restored.root() == frontier.root() == mth(tree)
