"""Public halves of the gateway's keys, kept as files in the key directory whatever the provider.

Verifiers and partners need public keys without access to the private ones (or to a token):

- ``gateway/signing/<key_id>.pub.pem`` for every usable log-signing key, and
  ``gateway/signing/retired/<key_id>.pub.pem`` for every retired one, so that ``ketenpoort
  audit verify --keys DIR`` checks checkpoints signed before and after rotations;
- ``gateway/hpke/<key_id>.pub.pem`` for every usable HPKE key;
- ``gateway/signing.pub.pem`` and ``gateway/hpke.pub.pem``: the current ones.

The key directory is the verifier's trust root here, as it is the gateway's: whoever can
write it can replace keys, so it must be writable by its owner only
(:mod:`gateway.crypto.file_provider`). A verifier outside the gateway passes the keys it got
out of band with ``--public-key`` instead.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.crypto._files import ensure_private_dir, write_public_file
from gateway.crypto._pem import load_ed25519_public_key, public_pem
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.provider import KeyKind

__all__ = [
    "drop_public",
    "export_current",
    "export_public",
    "keep_retired_signing_key",
    "log_public_keys",
]


def _ring_pub_file(paths: GatewayKeyPaths, kind: KeyKind, key_id: str) -> Path:
    if kind is KeyKind.SIGNING:
        return paths.signing_pub_file(key_id)
    if kind is KeyKind.HPKE:
        return paths.hpke_pub_file(key_id)
    raise ValueError("key-encryption keys have no public half")


def export_public(
    paths: GatewayKeyPaths,
    kind: KeyKind,
    key_id: str,
    public: Ed25519PublicKey | X25519PublicKey,
) -> None:
    """Write ``<kind>/<key_id>.pub.pem`` (mode 0644 in a 0700 directory)."""
    file = _ring_pub_file(paths, kind, key_id)
    ensure_private_dir(file.parent)
    write_public_file(file, public_pem(public))


def export_current(
    paths: GatewayKeyPaths, kind: KeyKind, public: Ed25519PublicKey | X25519PublicKey
) -> None:
    """Write ``signing.pub.pem`` or ``hpke.pub.pem``: the current public key of ``kind``."""
    if kind is KeyKind.KEK:
        raise ValueError("key-encryption keys have no public half")
    ensure_private_dir(paths.directory)
    target = paths.signing_pub if kind is KeyKind.SIGNING else paths.hpke_pub
    write_public_file(target, public_pem(public))


def drop_public(paths: GatewayKeyPaths, kind: KeyKind, key_id: str) -> None:
    """Remove ``<kind>/<key_id>.pub.pem`` if it is there."""
    _ring_pub_file(paths, kind, key_id).unlink(missing_ok=True)


def keep_retired_signing_key(
    paths: GatewayKeyPaths, key_id: str, public: Ed25519PublicKey
) -> None:
    """Keep a retired log-signing key's public half, so checkpoints it signed still verify.

    Written before the private key goes: a crash in between leaves a key both usable and
    kept, never one whose checkpoints nobody can check."""
    ensure_private_dir(paths.signing_retired_dir)
    write_public_file(paths.retired_signing_pub_file(key_id), public_pem(public))


def log_public_keys(paths: GatewayKeyPaths) -> list[Ed25519PublicKey]:
    """Every log-signing public key the key directory holds: the current one first, then the
    ring's, then the retired ones; each once. Raises KeystoreError for a file that is not an
    Ed25519 public key."""
    files = []
    if paths.signing_pub.exists():
        files.append(paths.signing_pub)
    if paths.signing_dir.is_dir():
        files += sorted(paths.signing_dir.glob("*.pub.pem"))
    if paths.signing_retired_dir.is_dir():
        files += sorted(paths.signing_retired_dir.glob("*.pub.pem"))
    keys: list[Ed25519PublicKey] = []
    seen: set[bytes] = set()
    for file in files:
        key = load_ed25519_public_key(file)
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if raw not in seen:
            seen.add(raw)
            keys.append(key)
    return keys
