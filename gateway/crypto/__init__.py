"""The cryptography edge: sealed answers, case data at rest, keys and pseudonyms.

Safe recipes over ``cryptography``: functions that open or verify raise, every sealed or
wrapped output carries a format version and the id of the key that made it.
"""

from gateway.crypto.devkeys import (
    PartnerPrivateKeys,
    PartnerPublicKeys,
    init_dev_keys,
    load_partner_private_keys,
    load_partner_public_keys,
)
from gateway.crypto.envelope import (
    DataKey,
    KekLookup,
    WrappedKey,
    field_aad,
    unwrap_data_key,
    wrap_data_key,
)
from gateway.crypto.errors import (
    CryptoError,
    DevKeysError,
    EnvelopeError,
    KeystoreError,
    SealError,
    SealOpenError,
)
from gateway.crypto.keyids import key_id
from gateway.crypto.keystore import KeyEncryptionKey, Keystore, rotate_kek
from gateway.crypto.layout import CaPaths, DevKeyPaths, GatewayKeyPaths, PartnerKeyPaths
from gateway.crypto.pseudonym import is_valid_bsn, normalise_bsn, subject_pseudonym
from gateway.crypto.sealing import (
    BOUND_SEAL_FORMAT_VERSION,
    SEAL_FORMAT_VERSION,
    SEAL_SUITE_NAME,
    SealBinding,
    SealedBox,
    open_sealed,
    seal,
)

__all__ = [
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
]
