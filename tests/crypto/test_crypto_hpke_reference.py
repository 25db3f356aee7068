"""Sealed boxes checked by a second, independent HPKE implementation.

The reference below follows RFC 9180 §4-5 step by step (base mode, single shot) using only
X25519, HMAC-SHA256 from the standard library and the ChaCha20-Poly1305 primitive. It is
first checked against the RFC's own test vector (A.2.1), then used to open what
:func:`seal` produces and to produce boxes :func:`open_sealed` must open. The ``info``
bytes are spelled out here from the documented encoding, not taken from the module.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.crypto import SealBinding, SealedBox, SealOpenError, key_id, open_sealed, seal

KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0003
KEM_SUITE_ID = b"KEM" + struct.pack(">H", KEM_ID)
HPKE_SUITE_ID = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)


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
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled = struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info
    return _expand(prk, labeled, length)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    eae_prk = _labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", enc + pk_r, 32)


def _key_schedule(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    psk_id_hash = _labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"")
    key = _labeled_expand(HPKE_SUITE_ID, secret, b"key", context, 32)
    base_nonce = _labeled_expand(HPKE_SUITE_ID, secret, b"base_nonce", context, 12)
    return key, base_nonce


def reference_open(sk_r: X25519PrivateKey, data: bytes, info: bytes, aad: bytes = b"") -> bytes:
    enc, ct = data[:32], data[32:]
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    key, nonce = _key_schedule(_shared_secret(dh, enc, _raw(sk_r.public_key())), info)
    return ChaCha20Poly1305(key).decrypt(nonce, ct, aad)


def reference_seal(
    pk_r: X25519PublicKey, plaintext: bytes, info: bytes, sk_e: X25519PrivateKey
) -> bytes:
    enc = _raw(sk_e.public_key())
    dh = sk_e.exchange(pk_r)
    key, nonce = _key_schedule(_shared_secret(dh, enc, _raw(pk_r)), info)
    return enc + ChaCha20Poly1305(key).encrypt(nonce, plaintext, b"")


def documented_info(binding: SealBinding, recipient_key_id: str) -> bytes:
    out = b"ketenpoort/v1 sealed-record"
    for part in (
        "1",
        binding.disclosure_id,
        binding.recipient_id,
        binding.purpose,
        recipient_key_id,
    ):
        encoded = part.encode("utf-8")
        out += len(encoded).to_bytes(4, "big") + encoded
    return out


# RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base.
A21_SK_R = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb"
A21_PK_R = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a"
A21_SK_E = "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600"
A21_ENC = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a"
A21_INFO = "4f6465206f6e2061204772656369616e2055726e"
A21_AAD = "436f756e742d30"
A21_PT = "4265617574792069732074727574682c20747275746820626561757479"
A21_CT = (
    "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28"
)

SUITE = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305"
BINDING = SealBinding(disclosure_id="d-77", recipient_id="reclassering", purpose="nazorg")


def test_reference_reproduces_rfc_9180_a21() -> None:
    sk_r = X25519PrivateKey.from_private_bytes(bytes.fromhex(A21_SK_R))
    assert _raw(sk_r.public_key()).hex() == A21_PK_R
    sk_e = X25519PrivateKey.from_private_bytes(bytes.fromhex(A21_SK_E))
    assert _raw(sk_e.public_key()).hex() == A21_ENC
    data = bytes.fromhex(A21_ENC + A21_CT)
    opened = reference_open(sk_r, data, bytes.fromhex(A21_INFO), bytes.fromhex(A21_AAD))
    assert opened == bytes.fromhex(A21_PT) == b"Beauty is truth, truth beauty"


def test_reference_opens_what_seal_produces() -> None:
    sk_r = X25519PrivateKey.generate()
    box = seal(b"sealed answer", sk_r.public_key(), BINDING)
    info = documented_info(BINDING, key_id(sk_r.public_key()))
    assert reference_open(sk_r, box.ciphertext, info) == b"sealed answer"


def test_open_sealed_opens_what_the_reference_produces() -> None:
    sk_r = X25519PrivateKey.from_private_bytes(bytes.fromhex(A21_SK_R))
    sk_e = X25519PrivateKey.from_private_bytes(bytes.fromhex(A21_SK_E))
    kid = key_id(sk_r.public_key())
    data = reference_seal(
        sk_r.public_key(), b"from the reference", documented_info(BINDING, kid), sk_e
    )
    box = SealedBox(version=1, suite=SUITE, recipient_key_id=kid, ciphertext=data)
    assert open_sealed(box, sk_r, BINDING) == b"from the reference"


def test_a_box_sealed_with_another_info_encoding_does_not_open() -> None:
    sk_r = X25519PrivateKey.generate()
    kid = key_id(sk_r.public_key())
    naive_info = f"1|{BINDING.disclosure_id}|{BINDING.recipient_id}|{BINDING.purpose}|{kid}"
    data = reference_seal(sk_r.public_key(), b"x", naive_info.encode(), X25519PrivateKey.generate())
    box = SealedBox(version=1, suite=SUITE, recipient_key_id=kid, ciphertext=data)
    with pytest.raises(SealOpenError):
        open_sealed(box, sk_r, BINDING)
