"""The Merkle tree of the accountability log, as RFC 9162 (Certificate Transparency 2.0) defines it.

Leaf i is the canonical body of record seq = i + 1. A leaf hashes as SHA-256(0x00 || body), an
interior node as SHA-256(0x01 || left || right); a tree of n leaves splits at the largest power
of two below n. That is the tree every CT log and Tessera build, so any RFC 9162 verifier checks
our proofs.

The writer does not keep the tree: it keeps the *frontier*, the roots of the complete subtrees
that make up the first n leaves (one per set bit of n, largest first). Appending a leaf merges
equal-sized subtrees on the right, as binary addition carries; the root of the whole tree is the
frontier folded from the right. Roots of complete subtrees at levels 8, 16, 24, ... ("tiles")
are handed out as they complete, so that a proof reads at most a few hundred stored hashes per
level instead of every record.

Proof construction works on any ``SubtreeHashes`` (a function giving the root of an aligned
complete subtree), so it is tested here against a plain list of leaves and used by the store
against its tiles. Everything in this module is pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
TILE_HEIGHT = 8
_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256

# Root of the complete subtree of 2**level leaves that starts at leaf ``start``.
SubtreeHashes = Callable[[int, int], bytes]


def leaf_hash(body: bytes) -> bytes:
    return _sha256(_LEAF + body).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE + left + right).digest()


EMPTY_ROOT = _sha256(b"").digest()


@dataclass(frozen=True, slots=True)
class Subtree:
    level: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Tile:
    """A completed subtree at a tile level: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    level: int
    idx: int
    hash: bytes


class Frontier:
    """The compact range of the first ``size`` leaves; extended leaf by leaf."""

    __slots__ = ("size", "_stack")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(levels) != len(hashes):
            raise ValueError(f"a frontier of {size} leaves has {len(levels)} hashes")
        self.size = size
        self._stack = [Subtree(level, h) for level, h in zip(levels, hashes, strict=True)]

    @classmethod
    def decode(cls, size: int, text: str) -> Frontier:
        """From the concatenated hex the chain head stores."""
        raw = bytes.fromhex(text)
        if len(raw) % HASH_SIZE:
            raise ValueError("frontier text is not a whole number of hashes")
        return cls(size, [raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)])

    def encode(self) -> str:
        return b"".join(s.hash for s in self._stack).hex()

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(s.hash for s in self._stack)

    def append(self, leaf: bytes, tiles: list[Tile] | None = None) -> None:
        """Add a leaf hash; completed tile-level subtrees are appended to ``tiles``."""
        stack = self._stack
        level = 0
        current = leaf
        while stack and stack[-1].level == level:
            current = node_hash(stack.pop().hash, current)
            level += 1
            if tiles is not None and level % TILE_HEIGHT == 0:
                tiles.append(Tile(level, ((self.size + 1) >> level) - 1, current))
        stack.append(Subtree(level, current))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        current = self._stack[-1].hash
        for subtree in reversed(self._stack[:-1]):
            current = node_hash(subtree.hash, current)
        return current


def root_of(leaves: Iterable[bytes]) -> bytes:
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, subtree: SubtreeHashes) -> bytes:
    """MTH of leaves [start, end), where ``start`` is aligned to a power of two >= end - start.

    Such a range is a left-aligned tree of its own: split into complete subtrees of
    decreasing size and folded from the right, as RFC 9162's MTH does recursively.
    """
    parts: list[bytes] = []
    position = start
    remaining = end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            parts.append(subtree(level, position))
            position += 1 << level
    current = parts[-1]
    for part in reversed(parts[:-1]):
        current = node_hash(part, current)
    return current


def inclusion_proof(index: int, size: int, subtree: SubtreeHashes) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(index, D[0:size]), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_below(end - start)
        if index - start < k:
            path.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            path.append(range_hash(start, start + k, subtree))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHashes) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(old_size, D[0:new_size])."""
    if not 0 < old_size <= new_size:
        raise ValueError("a consistency proof needs 0 < old_size <= new_size")
    if old_size == new_size:
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    # SUBPROOF(m, D[start:end], complete), unrolled; nodes are collected root-side first.
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(start, end, subtree))
            break
        k = _largest_power_below(n)
        if m <= k:
            proof.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, subtree))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root that ``path`` leads ``leaf`` to; ValueError if the
    path has the wrong length for (index, size)."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn = index, size - 1
    result = leaf
    for p in path:
        if sn == 0:
            raise ValueError("inclusion path is too long")
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion path is too short")
    return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    try:
        return root_from_inclusion(leaf, index, size, path) == root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def leaves_subtree(leaves: Sequence[bytes]) -> SubtreeHashes:
    """Subtree roots computed from a list of leaf hashes (tests, small trees)."""

    def subtree(level: int, start: int) -> bytes:
        return root_of(leaves[start : start + (1 << level)])

    return subtree
