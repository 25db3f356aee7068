"""Development keys (``ketenpoort keys init DIR``): a CA, the gateway's keys, partner keys.

Existing keys are never replaced unless ``overwrite=True``: a second run with an extra
partner id adds that partner and keeps everything else, so tokens, certificates and
wrapped case keys made with the first run stay valid.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.crypto import _certs
from gateway.crypto._files import (
    ensure_private_dir,
    read_private_file,
    read_public_file,
    write_private_file,
    write_public_file,
)
from gateway.crypto._pem import (
    load_certificate,
    load_ec_private_key,
    load_ed25519_private_key,
    load_ed25519_public_key,
    load_x25519_private_key,
    load_x25519_public_key,
    private_pem,
    public_pem,
)
from gateway.crypto.errors import DevKeysError, KeystoreError
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.keyids import key_id
from gateway.crypto.keystore import PSEUDONYM_KEY_BYTES
from gateway.crypto.layout import (
    CaPaths,
    DevKeyPaths,
    GatewayKeyPaths,
    PartnerKeyPaths,
    validate_partner_id,
)
from gateway.crypto.provider import KeyKind

__all__ = [
    "DEV_KEYS_README",
    "PartnerPrivateKeys",
    "PartnerPublicKeys",
    "init_dev_keys",
    "load_partner_private_keys",
    "load_partner_public_keys",
]

DEV_KEYS_README = (
    "Ketenpoort development keys; never use in production; never commit.\n"
    "\n"
    "Created by 'ketenpoort keys init'. Private key files are mode 0600 and the gateway\n"
    "refuses them otherwise. Run the command again with more partner ids to add partners;\n"
    "existing keys are kept.\n"
)

_Pair = tuple[bytes, bytes]


@dataclass(frozen=True)
class PartnerPublicKeys:
    """What the gateway needs of a partner: the key its tokens are signed with, and the
    key answers are sealed to."""

    token_key: Ed25519PublicKey
    token_key_id: str
    hpke_key: X25519PublicKey
    hpke_key_id: str


@dataclass(frozen=True)
class PartnerPrivateKeys:
    """What a partner's client needs to call the gateway and open sealed answers."""

    token_key: Ed25519PrivateKey
    token_key_id: str
    hpke_key: X25519PrivateKey
    hpke_key_id: str
    tls_cert_pem: bytes
    tls_key_pem: bytes
    ca_pem: bytes

    def __repr__(self) -> str:
        return (
            f"PartnerPrivateKeys(token_key_id={self.token_key_id!r}, "
            f"hpke_key_id={self.hpke_key_id!r})"
        )


def init_dev_keys(
    directory: Path,
    partner_ids: Sequence[str],
    *,
    hostnames: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    now: datetime | None = None,
    overwrite: bool = False,
) -> DevKeyPaths:
    """Create the development key directory, or add what is missing to it.

    A kept server certificate keeps the host names it was issued for; pass
    ``overwrite=True`` to reissue everything. Raises DevKeysError when kept files do not
    fit together (half a key pair, or a certificate another CA issued) and ValueError for
    an invalid partner id, IP address or time, before anything is written.
    """
    ids = tuple(dict.fromkeys(validate_partner_id(p) for p in partner_ids))
    if not hostnames and not ip_addresses:
        raise ValueError("the server certificate needs at least one host name or IP address")
    for address in ip_addresses:
        ipaddress.ip_address(address)
    if now is not None and now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    run = _Run(overwrite)
    paths = DevKeyPaths(
        root=directory,
        readme=directory / "README.txt",
        ca=CaPaths.under(directory),
        gateway=GatewayKeyPaths.under(directory),
        partners=tuple(PartnerKeyPaths.under(directory, p) for p in ids),
    )
    ensure_private_dir(directory)
    if overwrite or not paths.readme.exists():
        write_public_file(paths.readme, DEV_KEYS_README.encode("utf-8"))
        run.created.append(paths.readme)

    ca_cert, ca_key = _ensure_ca(paths.ca, moment, run)
    _ensure_gateway(
        paths.gateway, ca_cert, ca_key, paths.ca.cert, hostnames, ip_addresses, moment, run
    )
    for partner in paths.partners:
        _ensure_partner(
            partner, ca_cert, ca_key, paths.ca.cert, hostnames, ip_addresses, moment, run
        )
    return DevKeyPaths(
        root=paths.root,
        readme=paths.readme,
        ca=paths.ca,
        gateway=paths.gateway,
        partners=paths.partners,
        created=tuple(run.created),
    )


def load_partner_public_keys(directory: Path, partner_id: str) -> PartnerPublicKeys:
    """Load a partner's public token and HPKE keys; raise KeystoreError naming the file."""
    paths = PartnerKeyPaths.under(directory, partner_id)
    token_key = load_ed25519_public_key(paths.token_pub)
    hpke_key = load_x25519_public_key(paths.hpke_pub)
    return PartnerPublicKeys(token_key, key_id(token_key), hpke_key, key_id(hpke_key))


def load_partner_private_keys(directory: Path, partner_id: str) -> PartnerPrivateKeys:
    """Load what a partner's client holds; private files must be mode 0600."""
    paths = PartnerKeyPaths.under(directory, partner_id)
    token_key = load_ed25519_private_key(paths.token_key)
    hpke_key = load_x25519_private_key(paths.hpke_key)
    # Parse the TLS files here so a broken one fails at load, not at the first call.
    load_ec_private_key(paths.tls_key)
    load_certificate(paths.tls_cert)
    ca = CaPaths.under(directory)
    load_certificate(ca.cert)
    return PartnerPrivateKeys(
        token_key=token_key,
        token_key_id=key_id(token_key.public_key()),
        hpke_key=hpke_key,
        hpke_key_id=key_id(hpke_key.public_key()),
        tls_cert_pem=read_public_file(paths.tls_cert),
        tls_key_pem=read_private_file(paths.tls_key),
        ca_pem=read_public_file(ca.cert),
    )


class _Run:
    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self.created: list[Path] = []

    def ensure_pair(self, private: Path, public: Path, make: Callable[[], _Pair]) -> bool:
        """Write a private/public file pair unless both exist; True when written."""
        have_private, have_public = private.exists(), public.exists()
        if have_private and have_public and not self.overwrite:
            return False
        if (have_private or have_public) and not self.overwrite:
            present, missing = (private, public) if have_private else (public, private)
            raise DevKeysError(
                f"{missing} is missing but {present} exists; remove it or pass overwrite=True"
            )
        ensure_private_dir(private.parent)
        private_bytes, public_bytes = make()
        write_private_file(private, private_bytes)
        write_public_file(public, public_bytes)
        self.created += [private, public]
        return True


def _ensure_ca(
    paths: CaPaths, now: datetime, run: _Run
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    made: list[tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = []

    def make() -> _Pair:
        key = _certs.new_tls_key()
        cert = _certs.build_ca(key, now)
        made.append((cert, key))
        return private_pem(key), cert.public_bytes(Encoding.PEM)

    if run.ensure_pair(paths.key, paths.cert, make):
        return made[0]
    try:
        return load_certificate(paths.cert), load_ec_private_key(paths.key)
    except KeystoreError as exc:
        raise DevKeysError(f"the existing CA cannot be used: {exc}") from exc


def _ensure_tls(
    key_path: Path,
    cert_path: Path,
    issue: Callable[[ec.EllipticCurvePrivateKey], x509.Certificate],
    ca_cert: x509.Certificate,
    ca_cert_path: Path,
    run: _Run,
) -> None:
    def make() -> _Pair:
        key = _certs.new_tls_key()
        return private_pem(key), issue(key).public_bytes(Encoding.PEM)

    if run.ensure_pair(key_path, cert_path, make):
        return
    # A kept certificate must come from the CA in use, or TLS would fail far from here.
    try:
        load_certificate(cert_path).verify_directly_issued_by(ca_cert)
    except (KeystoreError, ValueError, TypeError, InvalidSignature) as exc:
        raise DevKeysError(
            f"{cert_path} was not issued by {ca_cert_path}; pass overwrite=True to reissue"
        ) from exc


def _ed25519_pair() -> _Pair:
    key = Ed25519PrivateKey.generate()
    return private_pem(key), public_pem(key.public_key())


def _x25519_pair() -> _Pair:
    key = X25519PrivateKey.generate()
    return private_pem(key), public_pem(key.public_key())


def _ensure_gateway(
    paths: GatewayKeyPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert_path: Path,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str],
    now: datetime,
    run: _Run,
) -> None:
    ensure_private_dir(paths.directory)
    _ensure_tls(
        paths.tls_key,
        paths.tls_cert,
        lambda key: _certs.build_server_cert(ca_cert, ca_key, key, hostnames, ip_addresses, now),
        ca_cert,
        ca_cert_path,
        run,
    )
    # Each gateway key kind is a ring (gateway.crypto.file_provider): a new key is added and
    # made current; earlier ones stay, so what they signed verifies and what they wrapped or
    # were sealed to still opens. A single-file key of the earlier layout counts as a ring.
    provider = FileKeyProvider(paths.directory.parent)
    rings = (
        (KeyKind.SIGNING, paths.signing_current, paths.signing_key),
        (KeyKind.HPKE, paths.hpke_current, paths.hpke_key),
    )
    for kind, current, single in rings:
        if run.overwrite or not (current.exists() or single.exists()):
            kid = provider.rotate(kind)
            if kind is KeyKind.SIGNING:
                run.created += [paths.signing_file(kid), paths.signing_pub_file(kid)]
                run.created += [current, paths.signing_pub]
            else:
                run.created += [paths.hpke_file(kid), paths.hpke_pub_file(kid)]
                run.created += [current, paths.hpke_pub]
    if run.overwrite or not paths.kek_current.exists():
        kek_id = provider.rotate(KeyKind.KEK)
        run.created += [paths.kek_file(kek_id), paths.kek_current]
    if run.overwrite or not paths.pseudonym_key.exists():
        write_private_file(paths.pseudonym_key, os.urandom(PSEUDONYM_KEY_BYTES))
        run.created.append(paths.pseudonym_key)


def _ensure_partner(
    paths: PartnerKeyPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert_path: Path,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str],
    now: datetime,
    run: _Run,
) -> None:
    ensure_private_dir(paths.directory)
    _ensure_tls(
        paths.tls_key,
        paths.tls_cert,
        lambda key: _certs.build_client_cert(
            ca_cert, ca_key, key, paths.partner_id, now, hostnames, ip_addresses
        ),
        ca_cert,
        ca_cert_path,
        run,
    )
    run.ensure_pair(paths.token_key, paths.token_pub, _ed25519_pair)
    run.ensure_pair(paths.hpke_key, paths.hpke_pub, _x25519_pair)
