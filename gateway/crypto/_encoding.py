"""Unambiguous byte encodings for the contexts that keys and ciphertexts are bound to."""

from __future__ import annotations

_MAX_PART = 0xFFFFFFFF


def length_prefixed(label: bytes, *parts: str | bytes) -> bytes:
    """``label`` followed by each part as a 4-byte big-endian length and its bytes (a string's
    UTF-8 bytes, as given; bytes as they are).

    The length prefixes make ("ab", "c") and ("a", "bc") encode differently, so no choice
    of identifiers can make two different contexts collide.
    """
    out = bytearray(label)
    for part in parts:
        encoded = part.encode("utf-8") if isinstance(part, str) else part
        if len(encoded) > _MAX_PART:
            raise ValueError("context part too long to encode")
        out += len(encoded).to_bytes(4, "big")
        out += encoded
    return bytes(out)
