from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto import key_id

# RFC 9180 A.2.1 pkRm: a public key whose bytes are fixed by a published document.
PK_RM = bytes.fromhex("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")


def test_x25519_and_ed25519_ids_hash_the_raw_public_bytes() -> None:
    expected = "k_" + hashlib.sha256(PK_RM).hexdigest()[:16]
    assert key_id(X25519PublicKey.from_public_bytes(PK_RM)) == expected

    ed = Ed25519PrivateKey.generate().public_key()
    raw = ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(ed) == "k_" + hashlib.sha256(raw).hexdigest()[:16]


def test_other_keys_hash_der_subject_public_key_info() -> None:
    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id(pub) == "k_" + hashlib.sha256(der).hexdigest()[:16]


def test_ids_have_a_fixed_shape_and_differ_between_keys() -> None:
    a = key_id(X25519PrivateKey.generate().public_key())
    b = key_id(X25519PrivateKey.generate().public_key())
    assert re.fullmatch(r"k_[0-9a-f]{16}", a)
    assert a != b
