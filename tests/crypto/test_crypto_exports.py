from __future__ import annotations

import gateway.crypto as crypto
from gateway.crypto import errors


def test_public_names_are_exactly_the_intended_ones() -> None:
    assert set(crypto.__all__) == {
        "BOUND_SEAL_FORMAT_VERSION",
        "SEAL_FORMAT_VERSION",
        "SEAL_SUITE_NAME",
        "CaPaths",
        "CryptoError",
        "DataKey",
        "DevKeyPaths",
        "DevKeysError",
        "EnvelopeError",
        "GatewayKeyPaths",
        "KekLookup",
        "KeyEncryptionKey",
        "Keystore",
        "KeystoreError",
        "PartnerKeyPaths",
        "PartnerPrivateKeys",
        "PartnerPublicKeys",
        "SealBinding",
        "SealError",
        "SealOpenError",
        "SealedBox",
        "WrappedKey",
        "field_aad",
        "init_dev_keys",
        "is_valid_bsn",
        "key_id",
        "load_partner_private_keys",
        "load_partner_public_keys",
        "normalise_bsn",
        "open_sealed",
        "rotate_kek",
        "seal",
        "subject_pseudonym",
        "unwrap_data_key",
        "wrap_data_key",
    }
    for name in crypto.__all__:
        assert getattr(crypto, name) is not None


def test_every_error_derives_from_crypto_error() -> None:
    assert issubclass(errors.SealOpenError, errors.SealError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.CryptoError)
