"""Loading PEM keys and certificates, with errors that name the file and nothing else."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto._files import read_private_file, read_public_file
from gateway.crypto.errors import KeystoreError


def _private(path: Path) -> PrivateKeyTypes:
    data = read_private_file(path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeystoreError(f"{path} is not an unencrypted PEM private key") from exc


def _public(path: Path) -> PublicKeyTypes:
    data = read_public_file(path)
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeystoreError(f"{path} is not a PEM public key") from exc


def _wrong_kind(path: Path, kind: str) -> KeystoreError:
    return KeystoreError(f"{path} does not hold an {kind} key")


def load_ed25519_private_key(path: Path) -> Ed25519PrivateKey:
    key = _private(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise _wrong_kind(path, "Ed25519 private")
    return key


def load_x25519_private_key(path: Path) -> X25519PrivateKey:
    key = _private(path)
    if not isinstance(key, X25519PrivateKey):
        raise _wrong_kind(path, "X25519 private")
    return key


def load_ec_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = _private(path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _wrong_kind(path, "elliptic-curve private")
    return key


def load_ed25519_public_key(path: Path) -> Ed25519PublicKey:
    key = _public(path)
    if not isinstance(key, Ed25519PublicKey):
        raise _wrong_kind(path, "Ed25519 public")
    return key


def load_x25519_public_key(path: Path) -> X25519PublicKey:
    key = _public(path)
    if not isinstance(key, X25519PublicKey):
        raise _wrong_kind(path, "X25519 public")
    return key


def load_certificate(path: Path) -> x509.Certificate:
    data = read_public_file(path)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KeystoreError(f"{path} is not a PEM certificate") from exc


def private_pem(key: PrivateKeyTypes) -> bytes:
    """PKCS#8 PEM, unencrypted: the file's 0600 mode is what protects it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
