"""HPKE base-mode opening around an outside X25519 operation (gateway.crypto.hpke_base):
checked against RFC 9180's vector A.2.1 and against ``cryptography``'s HPKE."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto import hpke_base
from gateway.crypto.errors import SealOpenError

# RFC 9180 A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base mode;
# the first encryption (sequence number 0).
A21 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "skRm": "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
    "pkRm": "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
    "enc": "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
    "key": "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91",
    "base_nonce": "5c4d98150661b848853b547f",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "aad": "436f756e742d30",
    "ct": "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db"
    "21993c62ce81883d2dd1b51a28",
}
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _v(name: str) -> bytes:
    return bytes.fromhex(A21[name])


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dh(private: X25519PrivateKey):  # type: ignore[no-untyped-def]
    return lambda enc: private.exchange(X25519PublicKey.from_public_bytes(enc))


def test_rfc9180_a21_key_schedule_and_first_message() -> None:
    sk_r = X25519PrivateKey.from_private_bytes(_v("skRm"))
    assert _raw(sk_r.public_key()) == _v("pkRm")
    shared = hpke_base.decapsulate(_dh(sk_r), _v("enc"), _v("pkRm"))
    context = hpke_base.key_schedule(shared, _v("info"))
    assert context.key == _v("key")
    assert context.base_nonce == _v("base_nonce")
    opened = hpke_base.open_base(
        _dh(sk_r), _v("pkRm"), _v("enc") + _v("ct"), _v("info"), aad=_v("aad")
    )
    assert opened == _v("pt")


def test_opens_what_cryptography_sealed() -> None:
    recipient = X25519PrivateKey.generate()
    for plaintext in (b"", b"x", b"case data " * 500):
        sealed = SUITE.encrypt(plaintext, recipient.public_key(), info=b"ketenpoort test")
        opened = hpke_base.open_base(
            _dh(recipient), _raw(recipient.public_key()), sealed, b"ketenpoort test"
        )
        assert opened == plaintext


@pytest.mark.parametrize("fault", ["info", "enc", "ct", "tag", "short", "recipient"])
def test_every_fault_raises_the_one_error(fault: str) -> None:
    recipient = X25519PrivateKey.generate()
    sealed = bytearray(SUITE.encrypt(b"payload", recipient.public_key(), info=b"i"))
    info, pk_r = b"i", _raw(recipient.public_key())
    if fault == "info":
        info = b"j"
    elif fault == "enc":
        sealed[0] ^= 1
    elif fault == "ct":
        sealed[33] ^= 1
    elif fault == "tag":
        sealed[-1] ^= 1
    elif fault == "short":
        sealed = sealed[:47]
    else:
        pk_r = _raw(X25519PrivateKey.generate().public_key())
    with pytest.raises(SealOpenError, match="could not be opened"):
        hpke_base.open_base(_dh(recipient), pk_r, bytes(sealed), info)


def test_an_all_zero_shared_secret_is_refused() -> None:
    # A low-order point as enc makes X25519 output zeros (RFC 9180 7.1.4); the check does not
    # depend on the key holder refusing it.
    with pytest.raises(SealOpenError):
        hpke_base.open_base(lambda enc: bytes(32), bytes(32), bytes(32) + bytes(16), b"")


def test_context_repr_hides_the_key() -> None:
    context = hpke_base.key_schedule(bytes(32), b"info")
    assert context.key.hex() not in repr(context)
