"""A serving gateway follows rotations of its own keys (``ketenpoort keys rotate|retire``).

The keystore loads the rings that changed (:meth:`gateway.crypto.keystore.Keystore.refresh`);
this moves the checkpoint signer to the current log-signing key and lets the log trust every
usable and retired one, so that ``AuditLog.verify`` (and the periodic log watch) passes across
the rotation. Sealed submissions and wrapped data keys ask the keystore for its rings on each
use and need nothing more.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.crypto.keystore import Keystore
from gateway.store.audit_log import AuditLog
from gateway.store.checkpoints import CheckpointSigner

__all__ = ["follow_key_changes"]


def follow_key_changes(keystore: Keystore, signer: CheckpointSigner, log: AuditLog) -> bool:
    """Refresh ``keystore`` and bring ``signer`` and ``log`` in line with it; True when any
    of the three changed.

    Signer and log are compared with the keystore rather than moved only when this refresh
    found a change, because another user of the keystore (the key-encryption keys' own
    refresh) may have loaded the change first. Raises KeystoreError when a changed ring
    cannot be loaded; the keys in force stay."""
    changed = keystore.refresh()
    current = keystore.signing_keys().current
    trusted = keystore.log_verification_keys()
    if _raws(log.trusted_keys) != _raws(trusted):
        log.trusted_keys = trusted
        changed = True
    # Trust first, then sign: a checkpoint signed with the new key is never checked against a
    # list without it.
    if _raw(signer.public_key) != _raw(current.public_key()):
        signer.use(current)
        changed = True
    return changed


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raws(keys: tuple[Ed25519PublicKey, ...]) -> frozenset[bytes]:
    return frozenset(_raw(k) for k in keys)
