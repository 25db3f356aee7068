"""HPKE base-mode opening (RFC 9180) around a Diffie-Hellman operation done elsewhere.

``cryptography`` opens HPKE only with a private key it holds. A key kept in a hardware
module offers one operation, X25519 with the sender's ephemeral key, so the rest of the
recipient's side is here: decapsulation (§4.1 DHKEM ``Decap``), the key schedule (§5.1,
mode ``base``), and single-shot ``Open`` of the first message (§5.2, §6.1), for the one
suite the gateway uses: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.

Tested against the RFC's vector A.2.1 and against ``cryptography``'s HPKE.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.crypto.errors import SealOpenError

__all__ = [
    "ENC_BYTES",
    "KEY_BYTES",
    "NONCE_BYTES",
    "BaseContext",
    "decapsulate",
    "key_schedule",
    "open_base",
]

KEM_ID = 0x0020  # DHKEM(X25519, HKDF-SHA256)
KDF_ID = 0x0001  # HKDF-SHA256
AEAD_ID = 0x0003  # ChaCha20Poly1305
ENC_BYTES = 32  # Nenc: an X25519 public key
KEY_BYTES = 32  # Nk
NONCE_BYTES = 12  # Nn
_SECRET_BYTES = 32  # Nsecret = Nh of HKDF-SHA256
_TAG_BYTES = 16
_MODE_BASE = 0x00

_KEM_SUITE_ID = b"KEM" + KEM_ID.to_bytes(2, "big")
_HPKE_SUITE_ID = b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + (
    AEAD_ID.to_bytes(2, "big")
)
_VERSION = b"HPKE-v1"
_OPEN_FAILED = "sealed box could not be opened"

# X25519 of any key with a low-order point is all zeros; RFC 9180 §7.1.4 says to abort.
_ZERO_DH = bytes(32)


@dataclass(frozen=True)
class BaseContext:
    """The recipient's AEAD key and base nonce after the key schedule."""

    key: bytes
    base_nonce: bytes

    def __repr__(self) -> str:
        return "BaseContext(<secret>)"


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, _VERSION + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = length.to_bytes(2, "big") + _VERSION + suite_id + label + info
    return _expand(prk, labeled_info, length)


def _shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    """DHKEM ``ExtractAndExpand(dh, enc || pkRm)`` (RFC 9180 §4.1)."""
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", enc + pk_r, _SECRET_BYTES)


def key_schedule(shared_secret: bytes, info: bytes) -> BaseContext:
    """``KeySchedule(mode_base, shared_secret, info, psk="", psk_id="")`` (RFC 9180 §5.1)."""
    psk_id_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"info_hash", info)
    context = bytes([_MODE_BASE]) + psk_id_hash + info_hash
    secret = _labeled_extract(_HPKE_SUITE_ID, shared_secret, b"secret", b"")
    key = _labeled_expand(_HPKE_SUITE_ID, secret, b"key", context, KEY_BYTES)
    base_nonce = _labeled_expand(_HPKE_SUITE_ID, secret, b"base_nonce", context, NONCE_BYTES)
    return BaseContext(key, base_nonce)


def decapsulate(dh: Callable[[bytes], bytes], enc: bytes, pk_r: bytes) -> bytes:
    """The KEM shared secret for ``enc``; ``dh(enc)`` is X25519(skR, enc) done by the key holder.

    Raises :class:`SealOpenError` when the DH output is all zeros (a low-order ``enc``)."""
    shared = dh(enc)
    if len(shared) != 32 or hmac.compare_digest(shared, _ZERO_DH):
        raise SealOpenError(_OPEN_FAILED)
    return _shared_secret(shared, enc, pk_r)


def open_base(
    dh: Callable[[bytes], bytes],
    pk_r: bytes,
    ciphertext: bytes,
    info: bytes,
    aad: bytes = b"",
) -> bytes:
    """Open single-shot HPKE ``enc || ct`` (sequence number 0) sealed to ``pk_r``.

    ``dh`` performs X25519 with the recipient's private key on the 32-byte ``enc`` and may
    raise :class:`SealOpenError` itself; every failure here raises that one error."""
    if len(pk_r) != ENC_BYTES or len(ciphertext) < ENC_BYTES + _TAG_BYTES:
        raise SealOpenError(_OPEN_FAILED)
    enc, ct = ciphertext[:ENC_BYTES], ciphertext[ENC_BYTES:]
    context = key_schedule(decapsulate(dh, enc, pk_r), info)
    # The first message's nonce is base_nonce XOR 0.
    try:
        return ChaCha20Poly1305(context.key).decrypt(context.base_nonce, ct, aad)
    except InvalidTag:
        raise SealOpenError(_OPEN_FAILED) from None
